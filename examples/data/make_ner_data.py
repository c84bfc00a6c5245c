"""Write the small labelled data set of docs/tutorial-ner.md (ner_train.txt, ner_test.txt).

The data are SYNTHETIC: sentences from a few dozen templates whose slots are
filled from short lists of person names (PER), places (LOC) and
organisations (ORG); every other word is labelled O.  A few names are
ambiguous on purpose (Jordan, Washington and Georgia are people in some
sentences and places in others), and a fifth of the entity names appear
only in the test file, so a classifier has to read the context window, not
only memorise words.  The format is CoNLL's: one "word label" per line, a
blank line between sentences.  Run from the repository root:

    python examples/data/make_ner_data.py

It is deterministic (a fixed seed): the files it writes are the ones shipped.
"""

from __future__ import annotations

import random
from pathlib import Path

PEOPLE = """Alice Maria Ahmed Chen Olga Pedro Fatima Kenji Laura Omar Ingrid Ravi Sofia
Tomasz Amara Lucas Hana Diego Elena Yusuf Grace Mateo Priya Noah Leila Ivan Zoe Kwame""".split()
PLACES = """Paris Berlin Lagos Lima Oslo Cairo Tokyo Quito Dublin Hanoi Nairobi Madrid Seoul
Prague Accra Lisbon Vienna Dhaka Manila Bogota Kyiv Tunis Riga Havana""".split()
ORGS = """Google UNESCO Siemens Oxfam Nokia Airbus Unilever Toyota Interpol Reuters Philips
Novartis Samsung Fiat""".split()
AMBIGUOUS = ["Jordan", "Washington", "Georgia"]  # people in some sentences, places in others

# {P}: a person, {L}: a place, {O}: an organisation; {A}/{B}: an ambiguous name read
# as a person / as a place by its context.
TEMPLATES = """{P} visited {L} last week .
{P} works for {O} in {L} .
the museums in {L} are amazing .
{O} opened an office in {L} .
{P} and {P} met in {L} .
yesterday {P} said that {O} will hire more people .
a spokesman for {O} declined to comment .
{P} flew from {L} to {L} on monday .
the mayor of {L} thanked {P} .
{O} reported higher profits this year .
{P} joined {O} after leaving {O} .
we drove through {L} before the storm .
{A} said the plan was good .
{A} told reporters that {O} was wrong .
she moved to {B} in the spring .
the weather in {B} was cold .
{P} lives near {B} with her family .
talks between {O} and {O} ended in {L} .
{P} will speak at {O} on friday .
the team from {L} beat {L} again .
according to {P} , the trains in {L} run late .
{O} sued {O} over a patent .
many students in {B} study hard .
{A} and {P} wrote a book about {L} .""".splitlines()


def fill(template: str, rng: random.Random, people, places, orgs) -> list[tuple[str, str]]:
    tokens = []
    for word in template.split():
        slot = {"{P}": ("PER", people), "{L}": ("LOC", places), "{O}": ("ORG", orgs)}
        if word in slot:
            label, names = slot[word]
            tokens.append((rng.choice(names), label))
        elif word == "{A}":
            tokens.append((rng.choice(AMBIGUOUS), "PER"))
        elif word == "{B}":
            tokens.append((rng.choice(AMBIGUOUS), "LOC"))
        else:
            tokens.append((word, "O"))
    return tokens


def held_out(names: list[str]) -> tuple[list[str], list[str]]:
    """Every fifth name is seen only at test time."""
    return [n for i, n in enumerate(names) if i % 5], [n for i, n in enumerate(names) if not i % 5]


def write(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    lines = []
    for sentence in sentences:
        lines += [f"{word} {label}" for word, label in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    rng = random.Random(20241202)
    (p_train, p_test), (l_train, l_test), (o_train, o_test) = map(held_out, (PEOPLE, PLACES, ORGS))
    train = [fill(rng.choice(TEMPLATES), rng, p_train, l_train, o_train) for _ in range(900)]
    test = [
        fill(rng.choice(TEMPLATES), rng, p_train + p_test, l_train + l_test, o_train + o_test)
        for _ in range(200)
    ]
    here = Path(__file__).resolve().parent
    write(here / "ner_train.txt", train)
    write(here / "ner_test.txt", test)


if __name__ == "__main__":
    main()
