"""Every built-in scorer on the answers models really give: Unicode, numbers with separators and units,
"B." against "(B)", fenced and broken JSON, empty output; and the config mistakes each one refuses."""

from __future__ import annotations

import pytest

from insideLLMs.config import SchemaError
from insideLLMs.scorers import Answer, Score, build_scorer, build_scorers, get_scorer


def score(entry: object, text: str, targets: tuple[str, ...] = (), choices: tuple[str, ...] = ()) -> Score:
    return build_scorer(entry).scorer.score(Answer(text, targets, choices))


@pytest.mark.parametrize(("text", "target", "hit"), [
    ("Paris", "paris", True),
    ("  Paris.  ", "Paris", True),
    ("The Paris!", "paris", True),  # articles and punctuation are not the answer
    ("1,000", "1000", True),
    ("3.0", "3", True),
    ("3.50", "3.5", True),
    ("twelve", "12", True),
    ("Zürich", "zurich", False),  # accents are letters, not decoration
    ("ＰＡＲＩＳ", "paris", True),  # full-width letters are the same word (NFKC)
    ("“quoted”", '"quoted"', True),
    ("Paris, France", "Paris", False),
    ("", "Paris", False),
    ("", "", False),
    ("1000", "1,000,000", False),
])
def test_exact_is_normalised_equality(text: str, target: str, hit: bool) -> None:
    assert score("exact", text, (target,)) == Score(hit, hit)


def test_exact_matches_any_target() -> None:
    assert score("exact", "NYC", ("New York", "nyc")).passed is True


@pytest.mark.parametrize(("text", "targets", "all_", "hit"), [
    ("The capital is Paris, of course.", ("paris",), False, True),
    ("Parisian food", ("paris",), False, False),  # whole words only
    ("It costs $1,000.", ("1000",), False, True),
    ("red and blue", ("red", "green"), False, True),
    ("red and blue", ("red", "green"), True, False),
    ("red, green and blue", ("red", "green"), True, True),
    ("", ("red",), False, False),
])
def test_includes(text: str, targets: tuple[str, ...], all_: bool, hit: bool) -> None:
    assert score({"type": "includes", "all": all_}, text, targets).value is hit


def test_f1_is_graded_and_passes_only_with_a_threshold() -> None:
    assert score("f1", "the quick brown fox", ("quick brown dog",)) == Score(0.6667, None)
    assert score({"type": "f1", "threshold": 0.6}, "quick brown fox", ("quick brown dog",)).passed is True
    assert score({"type": "f1", "threshold": 0.7}, "quick brown fox", ("quick brown dog",)).passed is False
    assert score("f1", "", ("x",)).value == 0.0
    assert score("f1", "Quick, BROWN dog!", ("quick brown dog", "cat")).value == 1.0  # the best target


@pytest.mark.parametrize(("text", "target", "options", "hit"), [
    ("42", "42", {}, True),
    ("The answer is 1,000.", "1000", {}, True),
    ("$1,200.50", "1200.5", {}, True),
    ("about 12kg", "12 kg", {}, True),
    ("45%", "45", {}, True),
    ("−3", "-3", {}, True),  # a Unicode minus
    ("3.0", "3", {}, True),
    ("2e3", "2000", {}, True),
    ("twelve", "12", {}, True),
    ("First 10, then 20.", "20", {}, True),  # the last number when nothing is marked
    ("Answer: 7 (after checking 8 and 9)", "7", {}, True),  # the marked answer's number
    ("3.14", "3.14159", {}, False),
    ("3.14", "3.14159", {"tolerance": 0.01}, True),
    ("105", "100", {"relative": 0.05}, True),
    ("106", "100", {"relative": 0.05}, False),
    ("no number here", "5", {}, False),
    ("", "5", {}, False),
])
def test_numeric(text: str, target: str, options: dict, hit: bool) -> None:
    assert score({"type": "numeric", **options}, text, (target,)).value is hit


CHOICES = ("Paris", "London", "Rome", "Berlin")


@pytest.mark.parametrize(("text", "picked"), [
    ("B", True), ("(B)", True), ("B.", True), ("b", True), ("B) London", True), ("**B**", True),
    ("Answer: B", True), ("Answer: (b)", True), ("The answer is B.", True), ("The answer is (B).", True),
    ("I'd go with option B", True), ("London", True), ("It is London, clearly.", True),
    ("A", False), ("A. Paris", False), ("E", False), ("", False), ("I think so", False),
    ("London or Paris", False),  # two choices named: no pick
    ("A good question: (B)", True),
])
def test_choice_reads_the_picked_letter(text: str, picked: bool) -> None:
    assert score("choice", text, ("B",), CHOICES).value is picked


def test_choice_target_may_be_the_choice_text_or_a_letter_in_any_form() -> None:
    for target in ("B", "b", "(B)", "London", "london"):
        assert score("choice", "B.", (target,), CHOICES).passed is True
    scorer = get_scorer("choice")
    assert scorer.target_problem(("B",), CHOICES) is None
    assert scorer.target_problem(("E",), CHOICES) == "target 'E' is neither a letter A-D nor the text of a choice (scorer choice)"
    assert scorer.target_problem(("Madrid",), CHOICES) is not None


@pytest.mark.parametrize(("text", "schema", "value", "parsed"), [
    ('{"name": "Ann", "email": "a@b.c"}', None, True, True),
    ('```json\n{"name": "Ann"}\n```', None, True, True),
    ("Sure! {\"name\": \"Ann\"}", None, False, False),
    ('{"name": "Ann",}', None, False, False),
    ("", None, False, False),
    ('"just a string"', None, True, True),
    ('{"name": "Ann", "email": "a@b.c"}', {"type": "object", "required": ["name", "email"]}, True, True),
    ('{"name": "Ann"}', {"type": "object", "required": ["name", "email"]}, False, True),
    ('{"name": "Zoë", "age": 3}', {"properties": {"age": {"type": "integer", "minimum": 0}}}, True, True),
    ('[1, 2]', {"type": "object"}, False, True),
])
def test_json(text: str, schema: dict | None, value: bool, parsed: bool) -> None:
    entry = {"type": "json", **({"schema": schema} if schema is not None else {})}
    assert score(entry, text) == Score(value, value, {"parsed": parsed})


def test_regex_alone_and_with_then() -> None:
    assert score({"type": "regex", "pattern": r"\d{3}-\d{4}"}, "call 555-1234") == Score(True, True)
    then = {"type": "regex", "pattern": r"Answer:\s*(\w+)", "then": "exact"}
    assert score(then, "Thinking... Answer: Paris", ("paris",)) == Score(True, True, {"matched": True})
    assert score(then, "Answer: Rome", ("paris",)) == Score(False, False, {"matched": True})
    assert score(then, "no marker", ("paris",)) == Score(False, False, {"matched": False})
    graded = {"type": "regex", "pattern": "Summary: (.*)", "then": "f1"}
    assert score(graded, "Summary: brown fox", ("quick brown fox",)) == Score(0.8, None, {"matched": True})
    assert score(graded, "nothing", ("quick brown fox",)) == Score(0.0, None, {"matched": False})
    named = {"type": "regex", "pattern": "(?P<city>[A-Z][a-z]+) is", "group": "city", "then": {"type": "numeric"}}
    assert score(named, "Paris is 2", ("2",)).value is False
    assert score({"type": "regex", "pattern": "paris", "ignore_case": True}, "PARIS").value is True


@pytest.mark.parametrize(("entry", "loc", "message"), [
    ({"type": "regex", "pattern": "("}, ("scorers", 0, "pattern"), "bad regular expression '(': missing ), unterminated subpattern at position 0"),
    ({"type": "regex", "pattern": "(a)", "group": 2}, ("scorers", 0, "group"), "the pattern has no group 2"),
    ({"type": "regex", "pattern": "(a)", "then": "nope"}, ("scorers", 0, "then", "type"), None),
    ({"type": "numeric", "tolerance": "a lot"}, ("scorers", 0, "tolerance"), "expected a number >= 0, got 'a lot'"),
    ({"type": "f1", "threshold": 1.5}, ("scorers", 0, "threshold"), "expected a number from 0 to 1, got 1.5"),
    ({"type": "json", "schema": {"type": "objekt"}}, ("scorers", 0, "schema"), None),
    ({"type": "json", "schema": "object"}, ("scorers", 0, "schema"), "expected a JSON Schema (a mapping), got 'object'"),
    ({"type": "exact", "strict": True}, ("scorers", 0), "bad args for scorer type 'exact': got an unexpected keyword argument 'strict'"),
    ({"name": "x"}, ("scorers", 0), None),
    (42, ("scorers", 0), None),
    ({"type": "exact", "name": ""}, ("scorers", 0, "name"), None),
])
def test_config_mistakes_name_their_key(entry: object, loc: tuple, message: str | None) -> None:
    with pytest.raises(SchemaError) as caught:
        build_scorers([entry])
    assert caught.value.loc == loc
    if message is not None:
        assert caught.value.message == message


def test_specs_hold_only_what_was_set() -> None:
    """What a scorer was given is its identity in the run id; defaults left out keep it stable."""
    assert get_scorer("numeric").spec == {"type": "numeric", "version": "1", "params": {}}
    assert get_scorer("numeric", tolerance=0.5).spec["params"] == {"tolerance": 0.5}
    assert build_scorer({"type": "regex", "pattern": "(a)", "then": "exact"}).scorer.spec["then"]["type"] == "exact"
