"""graphc's parser is Lark's, made cheaper: the same trees, positions, tokens and errors.

`graphc.frontend.parser` runs Lark's LALR parser on the grammar with three
replacements (`_ContextualLexer`, `_ParserState`, `_tree_builder`).  Each
program here is parsed by it and by a plain Lark parser of the same grammar
with ``propagate_positions=True``: the trees must agree node for node, with
the same tokens (type, text, line, column, end) and the same positions of
every subtree (its own and its container's, which takes in the brackets
around an operand); a program one rejects the other rejects with the same
graphc error at the same place.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lark import Lark, Token
from lark import Tree as LarkTree
from lark.exceptions import UnexpectedInput

from graphc import frontend

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*.gc"))

PROGRAMS = {
    "chain": "\n".join(
        ["dim w = 4", "input x : [w]"]
        + [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, 4)]
        + ["h0 = x"]
        + [f"h{k} = tanh(W{k} h{k - 1} + b{k})" for k in range(1, 4)]
        + ["J = sum(h3)"]
    ),
    "comments and continuations": (
        "dim n = 3 # a comment\r\nparam W : [n, n] \\\n  # more\ninput x : [n]\r\n"
        "y = W \\  \n x + (x\n + x) # end"
    ),
    "brackets and postfix": (
        "dim n = 3\nparam A : [n, n]\ninput x : [n]\nf(a, b) = a ∘ b\n"
        "y = ‖A x‖² + (xᵀ A x) + x[0] + x [1] + sum([x; x][0:n]) + f(x, 2 x)'x"
        " + A[0, :] x + √(xᵀx) + ‖(x ‖x‖)‖ - -x[1:]ᵀ x[:2]ᵀ + sum(A, axis=0) x"
    ),
    "declarations": "dim n, m = 2 * (n - 1) + 3\ninput ids : [m] int\nparam E : [n × m]\n"
    "param s : scalar\ny = sum(E[ids]) + s; output y",
    "empty": "",
    "blank lines": "\n\n# only a comment\n\n",
}

REJECTED = {
    "an unexpected token": "param a : []\nb = a +\n",
    "python's power": "param a:[]\n# only\n\n\nb = a ** 2",
    "an unexpected character": "param a : []\nb = a $ 2",
    "a fractional size": "dim n = 2.5",
    "an exponent as a size": "dim n = 1e3\ninput x : [n]",
    "an open bracket": "param a : []\nb = (a + 1\nc = a",
    "an unclosed norm": "param a : [2]\nb = ‖a + 1",
}


@pytest.fixture(scope="module")
def lark_parser() -> Lark:
    return Lark(
        frontend.grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=frontend._Layout(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


FIELDS = ("line", "column", "start_pos", "end_line", "end_column", "end_pos")


def lark_positions(tree: LarkTree) -> tuple:
    meta = tree.meta
    if meta.empty:
        return ()
    own = tuple(getattr(meta, f) for f in FIELDS)
    return own + tuple(getattr(meta, "container_" + f, getattr(meta, f)) for f in FIELDS)


def graphc_positions(tree: frontend.Tree) -> tuple:
    if tree.first is None:
        return ()
    first, last, outer_first, outer_last = tree.first, tree.last, tree.outer_first, tree.outer_last
    return (
        (first.line, first.column, first.start_pos, last.end_line, last.end_column, last.end_pos)
        + (outer_first.line, outer_first.column, outer_first.start_pos)
        + (outer_last.end_line, outer_last.end_column, outer_last.end_pos)
    )


def token_facts(token: Token) -> tuple:
    return (token.type, str(token), token.start_pos, token.line, token.column) + (
        token.end_line,
        token.end_column,
        token.end_pos,
    )


def assert_same_tree(expected: LarkTree, got: frontend.Tree) -> None:
    """Compare two trees node by node (without recursion)."""
    pending = [(expected, got)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, LarkTree):
            assert isinstance(b, frontend.Tree), (a, b)
            assert (a.data, len(a.children)) == (b.data, len(b.children))
            assert lark_positions(a) == graphc_positions(b), a.data
            if not a.meta.empty:  # the tree is its own meta, read as Lark's
                assert (b.meta.line, b.meta.end_pos) == (a.meta.line, a.meta.end_pos)
            pending += zip(a.children, b.children)
        else:
            assert isinstance(a, Token) and isinstance(b, Token)
            assert token_facts(a) == token_facts(b)


SOURCES = {**PROGRAMS, **{p.name: p.read_text(encoding="utf-8") for p in EXAMPLES}}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_same_tree_and_positions_as_lark(lark_parser, name):
    source = SOURCES[name]
    assert_same_tree(lark_parser.parse(source), frontend.parser().parse(source))


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_the_same_errors_as_lark(lark_parser, name):
    source = REJECTED[name]
    with pytest.raises(UnexpectedInput) as expected:
        lark_parser.parse(source)
    with pytest.raises(UnexpectedInput) as got:
        frontend.parser().parse(source)
    assert type(got.value) is type(expected.value)
    assert (got.value.line, got.value.column) == (expected.value.line, expected.value.column)
    ours = frontend._parse_error(got.value, source)
    theirs = frontend._parse_error(expected.value, source)
    assert (ours.message, ours.line, ours.column, ours.width) == (
        theirs.message,
        theirs.line,
        theirs.column,
        theirs.width,
    )


def test_a_malformed_number_is_the_same_graphc_error(lark_parser):
    # The layout post-lexer raises graphc's ParseError itself, from either lexer's tokens.
    source = "param a : []\nb = ‖a‖ + 1.2.3"
    raised = []
    for parser in (lark_parser, frontend.parser()):
        with pytest.raises(frontend.ParseError, match="malformed number '1.2.3'") as err:
            parser.parse(source)
        raised.append((err.value.line, err.value.column, err.value.width))
    assert raised[0] == raised[1] == (2, 11, 5)
