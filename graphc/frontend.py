"""From text to the explicit graph: the Lark parse and one lowering walk.

`lower(text)` parses a program with the grammar in ``grammar/graphc.lark``,
checks every name and shape, and returns a `LoweredProgram`: the declared
dims and variables and a `Graph` whose output is the program's result.  No
value is involved.  Every error is a `GraphcError` with line and column.

Statements are lowered in order; each expression goes through
`ExpressionLowering`, a non-recursive walk with one method per grammar
alias, carrying source positions (`Term`) so that an error can name the
operand as it was written ("cannot multiply W [n×250] by x [200]").

The parse is Lark's LALR parser on that grammar, with three parts made
cheaper and plugged in (`_ContextualLexer`, `_ParserState`, `_tree_builder`):
the same tokens, trees, positions and errors as Lark's own with
``propagate_positions`` (tests/test_parser_equivalence.py).
"""

from __future__ import annotations

import functools
import importlib.resources
import operator
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex
from lark.lexer import ContextualLexer
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_parser import LALR_Parser
from lark.parsers.lalr_parser_state import ParseConf, ParserState

from graphc import builtins, ops
from graphc.errors import (
    GraphcError,
    GraphcWarning,
    NameResolutionError,
    ParseError,
    ShapeError,
    did_you_mean,
)
from graphc.ir import Graph, Node, topological_order
from graphc.shapes import Dim, ShapeMismatch, Type, dim_sources, is_ambiguous

# ---------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------


def grammar_text() -> str:
    """The grammar: inside the installed package, or beside it in a checkout."""
    packaged = importlib.resources.files("graphc") / "grammar" / "graphc.lark"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammar" / "graphc.lark").read_text(
        encoding="utf-8"
    )


class _Layout(PostLex):
    """Newlines inside brackets continue the line; ``‖`` opens or closes a norm.

    A ``‖`` closes the innermost open norm when it follows something that can
    end an operand (``‖a‖``) and stands inside the same brackets as that
    norm's opening bar; otherwise it opens one (``2 ‖v‖^2``, ``‖(x ‖v‖)‖``).
    """

    always_accept = ("_NL", "NORM_BAR")
    _ENDS_OPERAND = {"NAME", "NUMBER", "RPAR", "RSQB", "TRANSPOSE", "NORM_CLOSE", "SUPERSCRIPT"}

    def process(self, stream):
        depth = 0
        opened: list[int] = []  # the bracket depth of each open norm's opening bar
        previous = None
        previous_end = None
        last = None
        for token in stream:
            kind = token.type
            if (
                kind == "NUMBER"
                and last is not None
                and last.type == "NUMBER"
                and (last.end_pos == token.start_pos)
            ):  # `1.2.3` would otherwise read as the product 1.2 · .3
                raise ParseError(
                    f"malformed number {last.value + token.value!r}",
                    last.line,
                    last.column,
                    width=len(last.value + token.value),
                )
            last = token
            if kind == "_NL" and (depth or opened):
                continue
            if kind == "NORM_BAR":
                if opened and opened[-1] == depth and previous in self._ENDS_OPERAND:
                    token = Token.new_borrow_pos("NORM_CLOSE", token.value, token)
                    opened.pop()
                else:
                    token = Token.new_borrow_pos("NORM_OPEN", token.value, token)
                    opened.append(depth)
            elif kind in ("LPAR", "LSQB"):
                if (
                    kind == "LSQB"
                    and previous in self._ENDS_OPERAND - {"NUMBER"}
                    and previous_end == token.start_pos
                ):  # x[0]: a subscript, not the factor [0]
                    token = Token.new_borrow_pos("INDEX_OPEN", token.value, token)
                depth += 1
            elif kind in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            previous = token.type
            previous_end = token.end_pos
            yield token


class _ContextualLexer(ContextualLexer):
    """Lark's contextual lexer, the same tokens with less work per token.

    Lark's lexer makes five Python calls per token (the lexer of the parser's
    state, its scanner, the match, the token's two constructors, the line
    counter) and as many per stretch of ignored space.  This loop does the
    same with the same compiled patterns of the same terminals: it takes the
    lexer of the parser's state, matches its patterns, skips what the grammar
    ignores, counts lines, and applies the lexer's callbacks (a keyword that
    the NAME pattern matched).  Where no terminal matches, Lark's own loop
    takes over from that position and raises its error.
    """

    def lex(self, lexer_state: Any, parser_state: Any):
        tables = self.__dict__.get("_tables")
        if tables is None:
            tables = self._tables = {}
        text = lexer_state.text
        if isinstance(text, str):  # Lark < 1.2: the text itself, not a TextSlice
            end = len(text)
        else:
            text, end = text.text, text.end
        counter = lexer_state.line_ctr
        pos, line, line_start = counter.char_pos, counter.line, counter.line_start_pos
        new_token = str.__new__
        while pos < end:
            state = parser_state.state_stack[-1]  # its position, without the property's call
            table = tables.get(state)
            if table is None:
                lexer = self.lexers[state]
                scanner = lexer.scanner  # built on first use, with lexer.callback
                ignore, newline, callback = lexer.ignore_types, lexer.newline_types, lexer.callback
                table = tables[state] = (
                    scanner._mres,
                    ignore | newline | set(callback),
                    ignore,
                    newline,
                    callback,
                )
            patterns, special, ignore, newline, callback = table
            for pattern in patterns:
                match = pattern.match(text, pos, end)
                if match is not None:
                    break
            else:  # no terminal here: Lark's lexer says why
                counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
                counter.column = pos - line_start + 1
                yield from super().lex(lexer_state, parser_state)
                return
            kind = match.lastgroup
            start, start_line, column = pos, line, pos - line_start + 1
            pos = match.end()
            value = match.group()
            if kind in special:
                if kind in newline:
                    newlines = value.count("\n")
                    if newlines:
                        line += newlines
                        line_start = start + value.rindex("\n") + 1
                if kind in ignore and kind not in callback:
                    continue
            token = new_token(Token, value)
            token.type = kind
            token.value = value
            token.start_pos = start
            token.line = start_line
            token.column = column
            token.end_line = line
            token.end_column = pos - line_start + 1
            token.end_pos = pos
            if kind in special and kind in callback:
                token = callback[kind](token)
                if kind in ignore:
                    continue
            lexer_state.last_token = token
            yield token
        counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
        counter.column = pos - line_start + 1


class _ParseConf(ParseConf):
    """Lark's parse configuration, with each state's moves read for `_ParserState`."""

    __slots__ = ("moves",)


class _ParserState(ParserState):
    """Lark's LALR parser state: the same shifts and reductions on Lark's table.

    Lark looks each reduction's rule up in the callbacks by the rule's Python
    ``__hash__`` and reads its size and name from the rule; here a state's moves
    hold them ready (`_moves`).  A token the state does not take goes to Lark's
    own ``feed_token``, which raises Lark's error.
    """

    __slots__ = ()

    def feed_token(self, token: Token, is_end: bool = False) -> Any:
        state_stack = self.state_stack
        value_stack = self.value_stack
        moves = self.parse_conf.moves
        kind = token.type
        while True:
            move = moves[state_stack[-1]].get(kind)
            if move is None:
                return super().feed_token(token, is_end)
            action, target = move
            if action is _SHIFT:
                state_stack.append(target)
                value_stack.append(token)
                return None
            if action is _UNIT:  # `?sum: product`: the value stays, the state moves on
                state_stack[-1] = moves[state_stack[-2]][target][1]
                if is_end and state_stack[-1] == self.parse_conf.end_state:
                    return value_stack[-1]
                continue
            size, build, origin = target
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value_stack.append(build(children))
            state_stack.append(moves[state_stack[-1]][origin][1])
            if is_end and state_stack[-1] == self.parse_conf.end_state:
                return value_stack[-1]


class _LALRParser(LALR_Parser):
    """Lark's LALR parser, run with `_ParserState` (Lark's own when asked to recover
    from errors, or where a terminal has a callback).  The moves are read at the
    first parse, after `parser` has put in the tree builders."""

    _moves: dict | None = None

    def parse(self, lexer: Any, start: str, on_error: Any = None) -> Any:
        callbacks = self.parser.callbacks
        if on_error is not None or any(type(key) is str for key in callbacks):
            return super().parse(lexer, start, on_error)
        if self._moves is None:
            self._moves = _moves(self._parse_table, callbacks)
        conf = _ParseConf(self._parse_table, callbacks, start)
        conf.moves = self._moves
        return self.parser.parse_from_state(_ParserState(conf, lexer))


_SHIFT, _REDUCE, _UNIT = "shift", "reduce", "unit"


def _moves(table: Any, callbacks: Mapping[Any, Any]) -> dict[Any, dict[str, tuple]]:
    """Each state's moves: (_SHIFT, the next state) to shift a token or a rule's result,
    (_REDUCE, (the rule's size, its callback, its name)) to reduce, and (_UNIT, its name)
    to reduce a rule that keeps its one child as it is (`_single`)."""
    reductions: dict[int, tuple] = {}
    moves = {}
    for state, actions in table.states.items():
        row = moves[state] = {}
        for kind, (action, arg) in actions.items():
            if action is Shift:
                row[kind] = (_SHIFT, arg)
                continue
            if id(arg) not in reductions:
                size, build, name = len(arg.expansion), callbacks[arg], str(arg.origin.name)
                unit = size == 1 and build is _single
                reductions[id(arg)] = (_UNIT, name) if unit else (_REDUCE, (size, build, name))
            row[kind] = reductions[id(arg)]
    return moves


class Tree:
    """A node of the parse tree: Lark's ``Tree`` (``data``, the rule's alias or name,
    and ``children``) that carries where it was written, as its first and last tokens.

    It is its own ``meta``, read like that of Lark's ``propagate_positions`` (line,
    column, start_pos, end_line, end_column, end_pos), without Lark's ``Meta`` object
    and dozen attributes at every reduction.  ``outer_first`` and ``outer_last`` are
    Lark's ``container_*``: they also cover the brackets of an operand written in
    parentheses, which an enclosing construct includes (the text of ``W (x + b)``
    ends at its ``)``).
    """

    __slots__ = ("data", "children", "first", "last", "outer_first", "outer_last")

    def __init__(
        self, data: str, children: list, first: Token | None = None, last: Token | None = None
    ):
        self.data = data
        self.children = children
        self.first = self.outer_first = first
        self.last = self.outer_last = last

    @property
    def meta(self) -> Tree:
        return self

    @property
    def empty(self) -> bool:
        return self.first is None

    # An empty tree has no position: reading one raises AttributeError, as Lark's Meta does.
    line = property(lambda self: self.first.line)
    column = property(lambda self: self.first.column)
    start_pos = property(lambda self: self.first.start_pos)
    end_line = property(lambda self: self.last.end_line)
    end_column = property(lambda self: self.last.end_column)
    end_pos = property(lambda self: self.last.end_pos)

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r})"


def _outer_end(children: list, last: bool) -> Token | None:
    """The first (or ``last``) token of ``children``, brackets of subtrees included."""
    for child in reversed(children) if last else children:
        if type(child) is Tree:
            if child.first is not None:
                return child.outer_last if last else child.outer_first
        else:
            return child
    return None


def _tree_builder(rule: Any):
    """The callback that builds the tree of one grammar rule, as Lark's tree builder
    with ``propagate_positions`` would (the same tree, the same positions), in one call.

    Lark's builder wraps each rule in three callables (inline a single child, drop the
    anonymous tokens and splice ``_rule`` children, propagate positions into a fresh
    ``Meta``); for the 26,000 tokens of a 3,000-line program that was half the parse.
    """
    name = str(rule.alias or rule.options.template_source or rule.origin.name)
    assert not rule.options.keep_all_tokens
    include = [
        (i, not symbol.is_term and symbol.name.startswith("_"))
        for i, symbol in enumerate(rule.expansion)
        if not (symbol.is_term and symbol.filter_out)
    ]
    inline = bool(rule.options.expand1) and not rule.alias
    if inline and include == [(0, False)] and len(rule.expansion) == 1:
        return _single  # `?sum: product`: the child itself, where it was
    if not rule.expansion:  # an empty program
        return lambda children: Tree(name, [])
    filtering = len(include) < len(rule.expansion)
    splicing = any(expand for _, expand in include)
    pick = operator.itemgetter(*[i for i, _ in include]) if len(include) > 1 else None
    only = include[0][0] if len(include) == 1 else None
    new = object.__new__

    def build(children: list) -> Any:
        if splicing:
            kept: list = []
            for i, expand in include:
                if expand:
                    if kept:
                        kept += children[i].children
                    else:  # left recursion: extend the child's list in place
                        kept = children[i].children
                else:
                    kept.append(children[i])
        elif pick is not None:
            kept = list(pick(children))
        elif filtering:  # one child kept, or none (`shape: "scalar"`)
            kept = [children[only]] if only is not None else []
        else:
            kept = children
        # Where the children start and end, the brackets of an operand included.
        first = children[0]
        if type(first) is Tree:
            first = first.outer_first
        last = children[-1]
        if type(last) is Tree:
            last = last.outer_last
        if first is None or last is None:  # an empty child at an end
            first, last = _outer_end(children, False), _outer_end(children, True)
        if inline and len(kept) == 1:  # `?atom: "(" expr ")"`: the expression, in its brackets
            tree = kept[0]
            if type(tree) is not Tree:
                return tree
            span = tree
            if first is not None:
                if span.first is None:
                    span.first, span.last = first, last
                span.outer_first, span.outer_last = first, last
            return tree
        tree = new(Tree)
        tree.data = name
        tree.children = kept
        tree.first = tree.outer_first = first
        tree.last = tree.outer_last = last
        return tree

    return build


_single = operator.itemgetter(0)


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    lark = Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_Layout(),
        maybe_placeholders=False,
        _plugins={"ContextualLexer": _ContextualLexer, "LALR_Parser": _LALRParser},
    )
    # Positions come from _tree_builder's spans, not propagate_positions.
    callbacks = lark.parser.parser.parser.callbacks
    for rule in lark.rules:
        callbacks[rule] = _tree_builder(rule)
    return lark


_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "INT": "an integer",
    "_NL": "end of line",
    "$END": "end of input",
    "MINUS": "'-'",
    "HADAMARD": "'*'",
    "MATMUL": "'@'",
    "TRANSPOSE": "'ᵀ'",
    "NORM_OPEN": "'‖'",
    "NORM_CLOSE": "'‖'",
    "INDEX_OPEN": "'['",
}


def _describe_token(kind: str) -> str:
    if kind in _TOKEN_NAMES:
        return _TOKEN_NAMES[kind]
    try:
        pattern = parser().get_terminal(kind).pattern
        return f"'{pattern.value}'" if pattern.type == "str" else kind.lower()
    except KeyError:
        return kind.lower()


def _parse_error(err: UnexpectedInput, source: str) -> ParseError:
    if isinstance(err, UnexpectedCharacters):
        char = source[err.pos_in_stream] if 0 <= err.pos_in_stream < len(source) else "?"
        return ParseError(f"unexpected character {char!r}", err.line, err.column)
    if isinstance(err, UnexpectedToken):
        token = err.token
        start = getattr(token, "start_pos", None)
        if token.type in ("NUMBER", "NAME") and start and source[start - 1].isdigit():
            # Where a size goes, 2.5 lexes as 2 then .5, and 1e3 as 1 then e3.
            digits = re.match(r"\d*", source[start - 1 :: -1]).end()
            number = source[start - digits : token.end_pos]
            if re.fullmatch(parser().get_terminal("NUMBER").pattern.to_regexp(), number):
                return ParseError(
                    f"a size is a whole number or a dim, not {number}",
                    token.line,
                    token.column - digits,
                    width=len(number),
                )
        if token.type in ("HADAMARD", "STAR") and start and source[start - 1 : start + 1] == "**":
            return ParseError(
                "** is Python's power; graphc writes z^2 (or z²)",
                token.line,
                token.column - 1,
                width=2,
            )
        found = _describe_token(token.type)
        if token.type not in ("$END", "_NL"):
            if token.type in ("NAME", "NUMBER", "INT"):  # "unexpected number '3'"
                found = f"{found.split(' ', 1)[-1]} {str(token.value)!r}"
            elif token.value:  # as written: '∘', not the first spelling '*'
                found = f"'{token.value}'"
        kinds = set(err.expected)
        state = getattr(err, "interactive_parser", None)
        if state is not None:
            # The contextual lexer reports what its lexer state would take, which
            # includes the always-accepted tokens (end of line, ‖); keep what the
            # parser would take.
            choices = set(state.choices())
            if choices & {"NORM_OPEN", "NORM_CLOSE"}:
                choices.add("NORM_BAR")
            kinds = (kinds & choices) or kinds
        expected = sorted({_describe_token(k) for k in kinds if not k.startswith("__")})
        hint = f"; expected {', '.join(expected[:8])}" if expected else ""
        line, column = err.line, err.column
        if token.type == "$END" or line in (None, -1):  # just past the last character
            text = source.rstrip()
            line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
        return ParseError(f"unexpected {found}{hint}", line, column)
    return ParseError(
        str(err).splitlines()[0], getattr(err, "line", None), getattr(err, "column", None)
    )


# ---------------------------------------------------------------------------
# What lowering produces
# ---------------------------------------------------------------------------


class Term:
    """A lowered operand: its node and where and how it was written.

    ``text`` is the operand as written, for messages; an operand read from the
    source quotes it only when a message asks (`Term.written`).
    """

    __slots__ = ("node", "_text", "line", "column", "width", "_source", "_start", "_end")

    def __init__(self, node: Node, text: str, line: int, column: int, width: int = 1):
        self.node = node
        self._text = text
        self.line = line
        self.column = column
        self.width = width

    @classmethod
    def written(cls, node: Node, source: str, span: Tree) -> Term:
        """``node``, written in ``source`` where ``span`` says."""
        term = cls.__new__(cls)
        term.node = node
        first = span.first
        if first is None:
            term._text, term.line, term.column, term.width = node.op.name, 1, 1, 1
            return term
        last = span.last
        term._text = None
        term._source, term._start, term._end = source, first.start_pos, last.end_pos
        term.line = line = first.line
        term.column = column = first.column
        term.width = max(1, last.end_column - column) if last.end_line == line else 1
        return term

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = _quote(self._source, self._start, self._end)
        return self._text

    def __repr__(self) -> str:
        return f"Term({self.text!r}, {self.node!r})"

    def __str__(self) -> str:
        return f"{self.text} {self.node.type}"

    @property
    def factor(self) -> str:
        """The text as one factor: ``x``, ``f(x)``, ``(W x)``, for suggestions like ``(W x)ᵀ y``."""
        text = self.text
        name = re.match(r"[^\W\d]\w*", text)
        rest = text[name.end() :] if name else text
        if not rest or (rest[0] in "([‖" and _closing(rest) == len(rest) - 1):
            return text
        return f"({text})"


@dataclass(frozen=True)
class Keyword:
    """A keyword argument of a call, ``axis=1``: its name token and its value."""

    token: Token
    term: Term


@dataclass
class LoweredProgram:
    """A checked program: declarations and the graph of its output."""

    source: str
    filename: str
    dims: dict[str, Dim]  # every declared dim: a size, an alias, or itself if unbound
    variables: list[Node]  # var nodes, in declaration order
    graph: Graph
    output: str
    warnings: list[GraphcWarning] = field(default_factory=list)
    # for each integer input, the sizes of the axes it selects from (ids < each)
    index_bounds: dict[str, tuple[Dim, ...]] = field(default_factory=dict)

    @property
    def unbound_dims(self) -> list[str]:
        return [name for name, d in self.dims.items() if d == Dim.of(name)]

    @property
    def params(self) -> list[Node]:
        return [v for v in self.variables if v.attr("kind") == "param"]


@dataclass
class _Function:
    name: str
    params: list[str]
    body: Tree


# ---------------------------------------------------------------------------
# Lowering
# ---------------------------------------------------------------------------


def _position(meta: Any) -> tuple[int, int, int]:
    line = getattr(meta, "line", 1)
    column = getattr(meta, "column", 1)
    width = 1
    if getattr(meta, "end_line", None) == line:
        width = max(1, meta.end_column - column)
    return line, column, width


def _closing(text: str) -> int:
    """Where the bracket opening ``text`` closes (-1 if it does not)."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([" or (char == "‖" and (depth == 0 or i == 0)):
            depth += 1
        elif char in ")]" or char == "‖":
            depth -= 1
        if depth == 0:
            return i
    return -1


# The words that begin statements and shapes; the grammar reads them as
# keywords where a statement starts, so they are never names.
RESERVED_WORDS = ("dim", "input", "param", "output", "scalar")

# The largest size NumPy can give an axis (its index type is a signed 64-bit integer).
MAX_SIZE = 2**63 - 1


def _not_reserved(token: Token) -> None:
    if str(token) in RESERVED_WORDS:
        raise NameResolutionError(
            f"{token} is a reserved word; choose another name",
            token.line,
            token.column,
            width=len(str(token)),
        )


def _fill_template(template: str, operands: list[Term]) -> str:
    try:
        return template.format(*operands)
    except (IndexError, AttributeError, KeyError):
        return template.replace("{0}", "the operand").replace("{1}", "the operand")


class _Program:
    """The state of one program being lowered: what each name means."""

    def __init__(self, source: str, filename: str, sizes: Mapping[str, int] | None = None):
        self.source = source
        self.filename = filename
        self.sizes = dict(sizes or {})  # sizes that replace the declared ones (graphc compare)
        self.dims: dict[str, Dim] = {}
        self.variables: list[Node] = []
        self.sized: set[str] = set()  # the dim names in the shapes of the variables so far
        self.values: dict[str, Node] = {}  # variables and intermediates
        self.functions: dict[str, _Function] = {}
        self.declared_at: dict[str, tuple[int, int]] = {}
        self.python_names: dict[str, str] = {}  # NFKC form -> the name declared
        self.names: dict[Node, str] = {}
        self.hints: dict[Node, str] = {}
        self.last_assigned: str | None = None
        self.output: tuple[str, Any] | None = None
        self.calling: list[str] = []
        self.warnings: list[GraphcWarning] = []
        self.dim_lowering = _DimLowering(self)
        self.bare_identity = False  # whether an I of no size was written (then look for it)

    def warn(self, message: str, line: int, column: int, width: int = 1) -> None:
        if not self.calling:  # a function body warns where it is written, once
            self.warnings.append(GraphcWarning(message, line, column, width=width))

    # ---- names ------------------------------------------------------------
    def claim(self, token: Token, what: str) -> str:
        name = str(token)
        if name in self.declared_at:
            line, _ = self.declared_at[name]
            raise NameResolutionError(
                f"{name} is already defined (line {line}); each name is defined once",
                token.line,
                token.column,
                width=len(name),
            )
        _not_reserved(token)
        spelled = self.python_names.setdefault(unicodedata.normalize("NFKC", name), name)
        if spelled != name:  # ℓ and l, x₁ and x1: one keyword argument to Python
            line, _ = self.declared_at[spelled]
            raise NameResolutionError(
                f"{name} is the same name as {spelled} (line {line}) to Python, which reads"
                f" both as {unicodedata.normalize('NFKC', name)}; choose another name",
                token.line,
                token.column,
                width=len(name),
            )
        if builtins.lookup(name) is not None and what != "dim":
            raise NameResolutionError(
                f"{name} is a built-in function; choose another name",
                token.line,
                token.column,
                width=len(name),
            )
        self.declared_at[name] = (token.line, token.column)
        return name

    def known_names(self) -> list[str]:
        return list(self.values) + list(self.dims) + list(self.functions) + builtins.all_names()

    def unknown(self, name: str, line: int, column: int, kind: str = "name") -> NameResolutionError:
        hint = did_you_mean(name, self.known_names())
        return NameResolutionError(f"unknown {kind} {name}{hint}", line, column, width=len(name))

    # ---- dims -------------------------------------------------------------
    def dim_expr(self, tree: Any) -> Dim:
        size = None
        if type(tree) is Tree and tree.data == "dim_name":  # [n]: as _DimLowering.dim_name reads it
            size = self.dims.get(str(tree.children[0]))
        if size is None:
            size = self.dim_lowering.transform(tree)
        if any(abs(coeff) > MAX_SIZE for _, coeff in size.terms):
            line, column, width = _position(getattr(tree, "meta", tree))
            raise ShapeError(
                "this size is too large: no array has 2^63 entries or more",
                line,
                column,
                width=width,
            )
        return size

    # ---- statements ---------------------------------------------------------
    def statement(self, tree: Tree) -> None:
        getattr(self, f"_{tree.data}")(tree)

    def _dim_decl(self, tree: Tree) -> None:
        for binding in tree.children:
            token, *value = binding.children
            name = self.claim(token, "dim")
            if name in self.sizes:
                self.dims[name] = Dim.of(self.sizes[name])
            elif value:
                size = self.dim_expr(value[0])
                if size.value is not None and size.value < 0:
                    line, column, width = _position(binding.meta)
                    raise ShapeError(
                        f"dim {name} = {size.value} is negative", line, column, width=width
                    )
                self.dims[name] = size
            else:
                self.dims[name] = Dim.of(name)

    def _declare(self, tree: Tree, kind: str) -> None:
        *tokens, shape = tree.children
        integer = False
        if isinstance(shape, Token) and shape.type == "INT_DATA":
            integer, marker = True, shape
            *tokens, shape = tokens
            if kind == "param":
                raise ShapeError(
                    "a param is differentiated and integer data are not: declare integer data"
                    " as an input (input y : [N] int)",
                    marker.line,
                    marker.column,
                    width=len(marker),
                )
        dims = tuple(self.dim_expr(child) for child in shape.children)
        for child, size in zip(shape.children, dims):
            if size.value is not None and size.value < 0:
                line, column, width = _position(child.meta)
                text = self.source[child.meta.start_pos : child.meta.end_pos]
                raise ShapeError(
                    f"size {text} = {size.value} is negative", line, column, width=width
                )
        if len(dims) > 2:
            line, column, width = _position(shape.meta)
            raise ShapeError(
                f"graphc handles scalars, vectors and matrices; this shape has rank {len(dims)}",
                line,
                column,
                width=width,
            )
        shape_type = Type(dims, integer=integer)
        for token in tokens:
            name = self.claim(token, kind)
            node = ops.var(name=name, kind=kind, type=shape_type)
            self.variables.append(node)
            self.values[name] = node
        self.sized.update(shape_type.names)

    def _input_decl(self, tree: Tree) -> None:
        self._declare(tree, "input")

    def _param_decl(self, tree: Tree) -> None:
        self._declare(tree, "param")

    def _function_def(self, tree: Tree) -> None:
        name_token, *param_tokens, body = tree.children
        name = self.claim(name_token, "function")
        params = [str(p) for p in param_tokens]
        for i, p in enumerate(param_tokens):
            _not_reserved(p)
            if str(p) in params[:i]:  # point at the repeat, not the first
                raise NameResolutionError(
                    f"parameter {p} appears twice in {name}", p.line, p.column, width=len(p)
                )
        self.functions[name] = _Function(name, params, body)

    def _assignment(self, tree: Tree) -> None:
        token, expr = tree.children
        term = self.lower_expression(expr, {})
        name = self.claim(token, "value")
        node = term.node
        if node.op.label is None and node not in self.names:
            self.names[node] = name
        self.values[name] = node
        self.last_assigned = name

    def _output_decl(self, tree: Tree) -> None:
        (token,) = tree.children
        self.output = (str(token), token)

    def check_dims_can_be_read(self) -> None:
        """Every unbound dim in a declared shape must be readable from a fed array's shape."""
        sources = dim_sources([(v, v.type) for v in self.variables])
        used = self.sized  # the dim names in the shapes of the variables
        for name, size in self.dims.items():
            if size == Dim.of(name) and name in used and name not in sources:
                line, column = self.declared_at[name]
                raise ShapeError(
                    f"dim {name} cannot be read from the shapes of the inputs and params: declare"
                    f" one whose shape gives it (such as [{name}]) or give it a size"
                    f" (dim {name} = …)",
                    line,
                    column,
                    width=len(name),
                )

    # ---- expressions ---------------------------------------------------------
    def lower_expression(self, tree: Any, scope: dict[str, Term]) -> Term:
        try:
            term = ExpressionLowering(self, scope).transform(tree)
        except RecursionError:
            raise GraphcError(
                "the program nests too deeply to lower", *_position(getattr(tree, "meta", None))[:2]
            ) from None
        if self.bare_identity and _unsized(term.node):
            raise _no_size(term.line, term.column, term.width)
        return term

    def result(self) -> LoweredProgram:
        if self.output is not None:
            name, token = self.output
            if name not in self.values:
                raise self.unknown(name, token.line, token.column, "output")
        elif self.last_assigned is not None:
            name = self.last_assigned
        else:
            raise NameResolutionError("the program computes nothing: assign a value (J = …)", 1, 1)
        self.check_dims_can_be_read()
        out = self.values[name]
        order = topological_order([out])  # what the output depends on (the kept nodes too)
        feeding = set(order)
        self.warn_unused(feeding, name)
        # The names that feed the output are computed under their names, whatever folds.
        kept = tuple(
            n
            for n in self.names
            if n in feeding and n is not out and n.op.label is None and not n.op.constant
        )
        graph = Graph({name: out}, dict(self.names), dict(self.hints), kept)
        return LoweredProgram(
            self.source,
            self.filename,
            dict(self.dims),
            list(self.variables),
            graph,
            name,
            sorted(self.warnings, key=lambda w: (w.line or 0, w.column or 0)),
            _index_bounds(order),
        )

    def warn_unused(self, used: set[Node], output: str) -> None:
        """A param or input that the output does not depend on is probably a slip."""
        for v in self.variables:
            if v not in used:
                name = v.attr("name")
                line, column = self.declared_at[name]
                self.warn(
                    f"{v.attr('kind')} {name} is declared but {output} does not depend on it",
                    line,
                    column,
                    len(name),
                )


class _Lowering:
    """A bottom-up walk of a parse tree, without recursion: each tree's method
    (named as its rule's alias) gets the tree's span and its children's values;
    a rule without a method gives the tree itself (as Lark's Transformer does)."""

    _methods: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._methods = {}

    def transform(self, tree: Any) -> Any:
        postfix = []  # the trees and tokens, parents before children, right to left
        pending = [tree]
        while pending:
            item = pending.pop()
            postfix.append(item)
            if type(item) is Tree:
                pending += item.children
        methods = self._methods
        values: list = []
        for item in reversed(postfix):
            if type(item) is not Tree:
                values.append(item)
                continue
            size = len(item.children)
            if size:
                children = values[-size:]
                del values[-size:]
            else:
                children = []
            method = methods.get(item.data)
            if method is None:
                method = getattr(type(self), item.data, None) or _rebuild(item.data)
                methods[item.data] = method
            values.append(method(self, item, children))
        (result,) = values
        return result


def _rebuild(data: str):
    def rebuild(_lowering: Any, meta: Tree, children: list) -> Tree:
        return Tree(data, children, meta.first, meta.last)

    return rebuild


class _DimLowering(_Lowering):
    """Dimension expressions: integers, dim names, + - *."""

    def __init__(self, program: _Program):
        self.program = program

    def dim_int(self, meta: Any, children: list) -> Dim:
        (token,) = children
        if len(token.lstrip("0")) > len(str(MAX_SIZE)):  # Python reads at most 4300 digits
            raise ShapeError(
                "this size is too large: no array has 2^63 entries or more",
                token.line,
                token.column,
                width=len(token),
            )
        return Dim.of(int(token))

    def dim_name(self, meta: Any, children: list) -> Dim:
        (token,) = children
        name = str(token)
        if name not in self.program.dims:
            if name in self.program.values:
                raise ShapeError(
                    f"{name} is a value, not a dim; shapes are made of dims (dim {name} …)",
                    token.line,
                    token.column,
                    width=len(name),
                )
            err = self.program.unknown(name, token.line, token.column, "dim")
            err.message += f" (declare it: dim {name})" if "did you mean" not in err.message else ""
            raise err
        return self.program.dims[name]

    def dim_add(self, meta: Any, children: list) -> Dim:
        a, b = children
        return a + b

    def dim_sub(self, meta: Any, children: list) -> Dim:
        a, _minus, b = children
        return a - b

    def dim_mul(self, meta: Any, children: list) -> Dim:
        a, b = children
        return a * b


class ExpressionLowering(_Lowering):
    """Expression trees -> graph nodes, one method per grammar alias."""

    def __init__(self, program: _Program, scope: dict[str, Term]):
        self.program = program
        self.scope = scope

    # ---- helpers ------------------------------------------------------------
    def term(self, node: Node, meta: Tree) -> Term:
        return Term.written(node, self.program.source, meta)

    def build(self, meta: Any, operands: list[Term], make) -> Term:
        """Apply ``make`` to the operands' nodes; a shape failure names them."""
        pending = self.program.bare_identity and any(_unsized(o.node) for o in operands)
        if pending:
            operands = self.sized_identity(meta, operands, make)
        try:
            node = make(*(o.node for o in operands))
        except ShapeMismatch as err:
            line, column, width = _position(meta)
            raise ShapeError(
                _fill_template(str(err), operands), line, column, width=width
            ) from None
        except builtins.ArgumentError as err:
            where = operands[min(err.index, len(operands) - 1)] if operands else None
            line, column, width = (
                (where.line, where.column, where.width) if where else _position(meta)
            )
            raise ShapeError(str(err), line, column, width=width) from None
        if pending and not _unsized(node) and any(_unsized(o.node) for o in operands):
            raise _no_size(*_position(meta))  # tr(I), sum(I): nothing says how large
        return self.term(node, meta)

    def sized_identity(self, meta: Any, operands: list[Term], make) -> list[Term]:
        """The bare ``I`` given the size the other operand says (``A + λ I``, ``I x``):
        the first of its dims that makes the operation valid.  Beside scalars only
        (``λ I``, ``−I``) it stays unsized until it meets one."""
        sized = [o for o in operands if not _unsized(o.node) and not o.node.type.is_scalar]
        if not sized:
            return operands
        for d in dict.fromkeys(d for o in sized for d in o.node.type.dims):
            candidate = [_sized(o, d) for o in operands]
            try:
                make(*(o.node for o in candidate))
            except (ShapeMismatch, builtins.ArgumentError):
                continue
            return candidate
        raise _no_size(*_position(meta))

    @staticmethod
    def _terms(children: list) -> list[Term]:
        return [c for c in children if isinstance(c, Term)]

    def warn(self, meta: Any, message: str) -> None:
        line, column, width = _position(meta)
        self.program.warn(message, line, column, width)

    def elementwise(self, meta, operands: list[Term], make) -> Term:
        """An elementwise operation; a vector meeting a square matrix of its dim is a guess."""
        result = self.build(meta, operands, make)
        vectors = [o for o in operands if o.node.type.is_vector]
        if vectors and is_ambiguous(vectors[0].node.type, result.node.type):
            v, n = vectors[0], vectors[0].node.type.dims[0]
            self.warn(
                meta,
                f"{v.text} {v.node.type} meets a square matrix [{n}×{n}]: it runs along each row"
                f" (NumPy's last axis); to say so write ones({n}) {v.factor}ᵀ, or"
                f" {v.factor} ones({n})ᵀ to spread it across the columns",
            )
        return result

    # ---- operators ------------------------------------------------------------
    def add(self, meta, children):
        return self.elementwise(meta, self._terms(children), ops.add)

    def sub(self, meta, children):
        return self.elementwise(meta, self._terms(children), ops.sub)

    def hadamard(self, meta, children):
        left, right = operands = self._terms(children)
        spelled = [str(c) for c in children if isinstance(c, Token)]
        kinds = {left.node.type.rank, right.node.type.rank}
        mat, vec = (left, right) if left.node.type.is_matrix else (right, left)
        if (
            spelled == ["*"]  # ∘ and ⊙ say Hadamard on purpose
            and kinds == {1, 2}
            and not vec.node.type.row
            and vec.node.type.dims[0] == mat.node.type.dims[1]
        ):
            self.warn(
                meta,
                f"{left.text} * {right.text} multiplies entry by entry, spreading the vector"
                f" {vec.text} over the matrix {mat.text}; for the matrix-vector product write"
                f" {mat.factor} {vec.factor}",
            )
        return self.elementwise(meta, operands, ops.mul)

    def div(self, meta, children):
        return self.elementwise(meta, self._terms(children), ops.div)

    def matmul(self, meta, children):
        return self.build(meta, self._terms(children), ops.product_of)

    def juxtapose(self, meta, children):
        left, right = operands = self._terms(children)
        if _has_top_level_division(left.text):
            self.warn(
                meta,
                f"{left.text} {right.text} reads as ({left.text}) {right.text}: a product after /"
                " multiplies the quotient; write the denominator in parentheses if it is meant"
                " to divide",
            )
        return self.build(meta, operands, ops.product_of)

    def neg(self, meta, children):
        (operand,) = self._terms(children)
        if operand.node.op.name == "const":
            return self.term(ops.const(-operand.node.attr("value")), meta)
        return self.build(meta, [operand], ops.neg)

    def pow(self, meta, children):
        base, exponent = self._terms(children)
        if exponent.text == "T" and not base.node.type.is_scalar:
            self.warn(
                meta,
                f"{base.text}^T raises {base.text} entry by entry to the power T; for the"
                f" transpose write {base.factor}ᵀ (or {base.factor}')",
            )
        square = base.node.type.is_matrix and base.node.type.dims[0] == base.node.type.dims[1]
        if square and exponent.node.op.name == "const" and exponent.node.attr("value") == -1:
            self.warn(
                meta,
                f"{base.text}^-1 is the reciprocal of every entry (^ is elementwise); for the"
                f" inverse write {base.factor}⁻¹ or inv({base.text})",
            )
        if exponent.node.op.name == "const":
            p = exponent.node.attr("value")
            return self.build(meta, [base], lambda b: ops.powc(b, p=p))
        return self.build(meta, [base, exponent], ops.pow_)

    def compare(self, meta, children):
        left, op, right = children
        symbol = {"≤": "<=", "≥": ">="}.get(str(op), str(op))
        make = {
            ">": ops.greater,
            ">=": ops.greater_equal,
            "<": lambda a, b: ops.greater(b, a),
            "<=": lambda a, b: ops.greater_equal(b, a),
        }[symbol]
        return self.elementwise(meta, [left, right], make)

    def root(self, meta, children):
        return self.build(meta, self._terms(children), ops.sqrt)

    def superscript(self, meta, children):
        base, token = children
        digits = str(token).translate(_SUPERSCRIPTS)
        t = base.node.type
        if digits == "-1" and t.is_matrix:
            if t.dims[0] != t.dims[1]:
                raise ShapeError(
                    f"{base.text}⁻¹ needs a square matrix, not {t}; for the reciprocal of every"
                    f" entry write {base.factor}^-1",
                    *_position(meta)[:2],
                    width=_position(meta)[2],
                )
            return self.build(meta, [base], ops.inv)
        if t.is_matrix:
            raise ShapeError(
                f"{base.text}{token} of a matrix could mean a matrix power or the power of each"
                f" entry: write {base.factor} {base.factor} for the product, {base.factor}^{digits}"
                " for the entries",
                *_position(meta)[:2],
                width=_position(meta)[2],
            )
        return self.build(meta, [base], lambda b: ops.powc(b, p=float(digits)))

    def transpose(self, meta, children):
        return self.build(meta, self._terms(children), ops.transpose)

    def concat(self, meta, children):
        return self.build(meta, self._terms(children), ops.concat)

    def hconcat(self, meta, children):
        return self.build(meta, self._terms(children), ops.hconcat)  # [A, B]: block columns

    # ---- subscripts: x[0], h[H:2H], W[0:H, :], A[i, j], E[ids] --------------------------
    def slice_both(self, meta, children):
        start, stop = self._terms(children)
        return Slice(self.bound(start), self.bound(stop), meta)

    def slice_from(self, meta, children):
        (start,) = self._terms(children)
        return Slice(self.bound(start), None, meta)

    def slice_to(self, meta, children):
        (stop,) = self._terms(children)
        return Slice(None, self.bound(stop), meta)

    def slice_all(self, meta, children):
        return Slice(None, None, meta)

    def bound(self, term: Term) -> Dim:
        """A subscript written as sizes: an integer literal or an expression of dims."""
        dim = _as_dim(term.node)
        if dim is None:
            raise ShapeError(
                f"{term.text} is not a position: a subscript is an integer literal, an expression"
                " of dims (h[H:2H]) or integer data (E[ids])",
                term.line,
                term.column,
                width=term.width,
            )
        if dim.value is not None and dim.value < 0:
            raise ShapeError(
                f"position {dim.value} is negative: positions count from 0 (x[0] is the first)",
                term.line,
                term.column,
                width=term.width,
            )
        return dim

    def subscript(self, meta, children):
        base, *subs = [c for c in children if isinstance(c, (Term, Slice))]
        t = base.node.type
        if len(subs) > max(t.rank, 1) or t.is_scalar:
            raise ShapeError(
                f"{base.text} {t} takes {t.rank} subscript{'s' if t.rank != 1 else ''},"
                f" not {len(subs)}",
                *_position(meta)[:2],
                width=_position(meta)[2],
            )
        picks = []
        for sub in subs:
            if isinstance(sub, Term) and sub.node.type.integer:
                if len(subs) > 1:
                    raise ShapeError(
                        "integer data select whole rows (E[ids]); for one entry per row write"
                        " pick(Z, y)",
                        sub.line,
                        sub.column,
                        width=sub.width,
                    )
                return self.build(meta, [base, sub], ops.gather)
            picks.append(sub if isinstance(sub, Slice) else self.bound(sub))
        operands = [base]

        def select(a: Node) -> Node:
            return _select(a, picks)

        return self.build(meta, operands, select)

    def norm(self, meta, children):
        return self.build(meta, self._terms(children), builtins.norm)

    def number(self, meta, children):
        (token,) = children
        return self.term(ops.const(float(token)), meta)

    # ---- names ----------------------------------------------------------------
    def name(self, meta, children):
        (token,) = children
        name = str(token)
        program = self.program
        if name in self.scope:
            return self.term(self.scope[name].node, meta)
        if name in program.values:
            return self.term(program.values[name], meta)
        if name in program.dims:
            size = program.dims[name]
            unsized = [n for n in size.names if n not in program.sized]
            if unsized:
                raise ShapeError(
                    f"dim {unsized[0]} has no size here: give it one (dim {unsized[0]} = …)"
                    " or use it in the shape of an input or param declared above",
                    token.line,
                    token.column,
                    width=len(name),
                )
            return self.term(ops.dimval(dim=size), meta)
        if name in builtins.CONSTANTS:
            return self.term(ops.const(builtins.CONSTANTS[name]), meta)
        if name == "I":  # the identity, sized by what it meets (a name I, if declared, wins)
            self.program.bare_identity = True
            return self.term(ops.eye(dim=UNSIZED), meta)
        if name in program.functions or builtins.lookup(name) is not None:
            raise NameResolutionError(
                f"{name} is a function; call it: {name}(…)",
                token.line,
                token.column,
                width=len(name),
            )
        return self.split_name(token, meta)

    def split_name(self, token: Token, meta) -> Term:
        """Read an undeclared name as a product of declared ones (``Wx`` -> W x)."""
        word = str(token)
        readings = _readings(word, _Known(self.scope, self.program.values))
        if not readings:
            raise self.program.unknown(word, token.line, token.column)
        if len(readings) > 1:
            listed = "; ".join(" ".join(r) for r in readings[:5])
            raise NameResolutionError(
                f"{word} is not declared and reads more than one way ({listed});"
                " write the factors apart",
                token.line,
                token.column,
                width=len(word),
            )
        line, column, _ = _position(meta)
        terms, offset = [], 0
        for piece in readings[0]:
            node = self.scope[piece].node if piece in self.scope else self.program.values[piece]
            terms.append(Term(node, piece, line, column + offset, len(piece)))
            offset += len(piece)
        result = terms[0]
        for right in terms[1:]:
            left = result
            result = self.build(meta, [left, right], ops.product_of)
            result = Term(
                result.node,
                left.text + right.text,
                left.line,
                left.column,
                left.width + right.width,
            )
        return self.term(result.node, meta)

    def keyword(self, meta, children):
        token, term = children
        return Keyword(token, term)

    def _builtin_call(self, builtin: builtins.Builtin, token: Token, args: list, meta) -> Term:
        name = str(token)
        if all(type(a) is Term for a in args) and len(args) in builtin.arities:
            return self.build(meta, args, builtin.build)  # no keywords: what follows, in short
        positional = [a for a in args if isinstance(a, Term)]
        keywords = [a for a in args if isinstance(a, Keyword)]
        seen: set[str] = set()
        after_keyword = False
        for arg in args:
            if isinstance(arg, Keyword):
                after_keyword = True
            elif after_keyword:
                raise ParseError(
                    "a positional argument cannot follow a keyword argument",
                    arg.line,
                    arg.column,
                    width=arg.width,
                )
        for kw in keywords:
            word = str(kw.token)
            if word not in builtin.keywords:
                takes = (
                    f"; it takes {', '.join(k + '=' for k in builtin.keywords)}"
                    if builtin.keywords
                    else ""
                )
                raise NameResolutionError(
                    f"{name} takes no keyword {word}{takes}",
                    kw.token.line,
                    kw.token.column,
                    width=len(word),
                )
            if word in seen:
                raise NameResolutionError(
                    f"{word}= is given twice", kw.token.line, kw.token.column, width=len(word)
                )
            seen.add(word)
        if len(positional) not in builtin.arities or len(positional) + len(keywords) > max(
            builtin.arities
        ):
            wanted = " or ".join(str(a) for a in builtin.arities)
            raise NameResolutionError(
                f"{name} takes {wanted} argument{'s' if builtin.arities != (1,) else ''},"
                f" not {len(args)}",
                token.line,
                token.column,
                width=len(name),
            )
        names = [str(kw.token) for kw in keywords]
        count = len(positional)

        def make(*nodes: Node) -> Node:
            return builtin.build(*nodes[:count], **dict(zip(names, nodes[count:])))

        return self.build(meta, positional + [kw.term for kw in keywords], make)

    def call(self, meta, children):
        token, *args = children
        name = str(token)
        program = self.program
        for arg in args:
            if isinstance(arg, Keyword) and builtins.lookup(name) is None:
                raise NameResolutionError(
                    f"keyword arguments ({arg.token}=) are for built-in functions; {name} takes"
                    " its arguments by position",
                    arg.token.line,
                    arg.token.column,
                    width=len(str(arg.token)),
                )
        if name in program.functions and name not in self.scope:
            return self.call_user_function(program.functions[name], args, token, meta)
        builtin = builtins.lookup(name) if name not in self.scope else None
        if builtin is not None:
            return self._builtin_call(builtin, token, args, meta)
        # `W (x + b)`: a value followed by a parenthesis is a product.
        known = set(self.scope) | set(program.values)
        if name not in known and name not in program.dims and not _readings(name, known):
            raise program.unknown(name, token.line, token.column, "function")
        if len(args) != 1:
            raise NameResolutionError(
                f"{name} is a value, not a function; a value followed by (…) is a product"
                f" with one factor, not {len(args)}",
                token.line,
                token.column,
                width=len(name),
            )
        callee = self.name(meta, [token]).node
        callee = Term(callee, name, token.line, token.column, len(name))
        return self.build(meta, [callee, args[0]], ops.product_of)

    def call_user_function(self, function: _Function, args: list[Term], token: Token, meta) -> Term:
        program = self.program
        if len(args) != len(function.params):
            raise NameResolutionError(
                f"{function.name} takes {len(function.params)} argument"
                f"{'s' if len(function.params) != 1 else ''}, not {len(args)}",
                token.line,
                token.column,
                width=len(function.name),
            )
        if function.name in program.calling:
            raise NameResolutionError(
                f"{function.name} calls itself; functions are inlined and cannot recurse",
                token.line,
                token.column,
                width=len(function.name),
            )
        program.calling.append(function.name)
        try:
            result = program.lower_expression(function.body, dict(zip(function.params, args)))
        except GraphcError as err:  # the error is in the body: say which call led there
            err.message += f" (in {function.name} called at line {token.line}:{token.column})"
            raise
        finally:
            program.calling.pop()
        node = result.node
        if node.op.label is None and node not in program.names:
            program.hints.setdefault(node, function.name)
        return self.term(node, meta)


def _index_bounds(nodes: list[Node]) -> dict[str, tuple[Dim, ...]]:
    """Each integer input's bounds: the sizes of the axes it selects from."""
    bounds: dict[str, list[Dim]] = {}
    for n in nodes:
        if n.op.name in ("gather", "pick") and n.args[1].op.name == "var":
            axis = 0 if n.op.name == "gather" else 1
            found = bounds.setdefault(n.args[1].attr("name"), [])
            if n.args[0].type.dims[axis] not in found:
                found.append(n.args[0].type.dims[axis])
    return {name: tuple(dims) for name, dims in bounds.items()}


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


@dataclass(frozen=True)
class Slice:
    """A slice subscript, ``a:b`` (a bound left out is the axis's start or end)."""

    start: Dim | None
    stop: Dim | None
    meta: Any


def _as_dim(node: Node) -> Dim | None:
    """The size an expression of integer literals and dims stands for, if it is one."""
    sizes: dict[Node, Dim] = {}
    for n in topological_order([node]):
        args = [sizes.get(a) for a in n.args]
        if None in args:
            return None
        match n.op.name:
            case "const" if float(n.attr("value")).is_integer() and abs(n.attr("value")) < MAX_SIZE:
                sizes[n] = Dim.of(int(n.attr("value")))
            case "dimval":
                sizes[n] = n.attr("dim")
            case "add":
                sizes[n] = args[0] + args[1]
            case "sub":
                sizes[n] = args[0] - args[1]
            case "mul":
                sizes[n] = args[0] * args[1]
            case "neg":
                sizes[n] = -args[0]
            case _:
                return None
    return sizes[node]


def _take(a: Node, pick: Slice | Dim) -> Node:
    """Rows of a column vector or matrix: a range (a vector or matrix) or one (scalar or row)."""
    if isinstance(pick, Slice):
        stop = a.type.dims[0] if pick.stop is None else pick.stop
        start = Dim.of(0) if pick.start is None else pick.start
        if start == Dim.of(0) and stop == a.type.dims[0]:
            return a
        return ops.take(a, start=start, stop=stop)
    return ops.index(a, at=pick)


# The size of a bare `I` until an operation gives it one (no program can name this dim).
UNSIZED = Dim.of("I?")


def _unsized(node: Node) -> bool:
    return UNSIZED in node.type.dims


def _sized(term: Term, d: Dim) -> Term:
    """``term`` with its bare identity given the size ``d``."""
    if not _unsized(term.node):
        return term
    mapping: dict[Node, Node] = {}
    for node in topological_order([term.node]):
        if node.op.name == "eye" and node.attr("dim") == UNSIZED:
            mapping[node] = ops.eye(dim=d)
        else:
            mapping[node] = node.with_args(mapping[a] for a in node.args)
    return Term(mapping[term.node], term.text, term.line, term.column, term.width)


def _no_size(line: int | None, column: int | None, width: int = 1) -> ShapeError:
    return ShapeError(
        "I (the identity) takes its size from what it meets: a square matrix it is added to"
        " (A + λ I) or a factor it multiplies (I x); here nothing gives it one: write eye(n)",
        line,
        column,
        width=width,
    )


def _select(a: Node, picks: list) -> Node:
    """``a[picks]`` by positions: x[i] a scalar, x[i:j] a vector, A[i] row i as a vector,
    A[i, :] row i as a row, A[:, j] column j, A[i, j] an entry, slices keep the rest."""
    t = a.type
    if t.is_vector:
        column = ops.transpose(a) if t.row else a
        picked = _take(column, picks[0])
        return ops.transpose(picked) if t.row and picked.type.is_vector else picked
    if len(picks) == 1:  # A[i]: row i, a vector (like E[i] for one id); A[i:j]: rows
        picked = _take(a, picks[0])
        return ops.transpose(picked) if picked.type.is_vector else picked
    rows, cols = picks
    if isinstance(rows, Slice):
        a = _take(a, rows)
        if isinstance(cols, Slice):
            start, stop = cols.start or Dim.of(0), cols.stop or a.type.dims[1]
            if start == Dim.of(0) and stop == a.type.dims[1]:
                return a  # A[i:j, :]
            return ops.take_cols(a, start=start, stop=stop)
        return ops.index_col(a, at=cols)  # column j: a column vector
    row = _take(a, rows)  # a row vector
    picked = _take(ops.transpose(row), cols)
    return ops.transpose(picked) if picked.type.is_vector else picked


# An operand is quoted in messages as written, up to this many characters;
# a longer one keeps its two ends (so lowering a long expression stays linear).
QUOTE_LIMIT = 160


def _quote(source: str, start: int, end: int) -> str:
    if end - start <= QUOTE_LIMIT:
        return " ".join(source[start:end].split())
    half = QUOTE_LIMIT // 2
    head = " ".join(source[start : start + half].split())
    tail = " ".join(source[end - half : end].split())
    return f"{head} … {tail}"


def _has_top_level_division(text: str) -> bool:
    """``a / b`` written without enclosing brackets: a ``/`` outside every bracket."""
    if "/" not in text:
        return False
    depth = 0
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "/" and depth == 0:
            return True
    return False


class _Known:
    """The names in scope, for membership tests (not copied for every undeclared name)."""

    def __init__(self, *scopes: Mapping[str, Any]):
        self.scopes = scopes

    def __contains__(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)


def _readings(word: str, known: Any, limit: int = 8) -> list[list[str]]:
    """Every way to write ``word`` as a concatenation of two or more known names."""
    n = len(word)
    ways: list[list[list[str]]] = [[] for _ in range(n + 1)]
    ways[n] = [[]]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n + 1):
            if word[i:j] in known:
                for rest in ways[j]:
                    if len(ways[i]) < limit:
                        ways[i].append([word[i:j], *rest])
    return [r for r in ways[0] if len(r) > 1]


def lower(
    source: str, filename: str = "<string>", sizes: Mapping[str, int] | None = None
) -> LoweredProgram:
    """Parse and check ``source``; raise `GraphcError` with its position.

    ``sizes`` gives dims sizes that replace what the program declares (``dim d = 50``
    or ``dim n``): `graphc compare` shrinks every dim so that SymPy can scalarise.
    """
    try:
        try:
            tree = parser().parse(source)
        except UnexpectedInput as err:
            raise _parse_error(err, source) from None
        except RecursionError:
            raise ParseError("the program nests too deeply to parse", 1, 1) from None
        program = _Program(source, filename, sizes)
        for statement in tree.children:
            program.statement(statement)
        lowered = program.result()
        for warning in lowered.warnings:
            warning.located(source, filename)
        return lowered
    except GraphcError as err:
        raise err.located(source, filename) from None
