"""Units, response splitting, answer extraction and equivalence, token counting fallbacks."""

from __future__ import annotations

import pytest

from drp.answers import equivalent, extract_answer, last_boxed, numbers_in
from drp.layout import answer_section_after, join_response, split_response
from drp.text import atomic_units, join_units, unit_layout
from drp.tokens import APPROXIMATE, TokenCounter


def test_split_response_forms():
    assert split_response("<think>a\n\nb</think>\n\nans").thinking == "a\n\nb"
    only_close = split_response("a b</think>ans")
    assert (only_close.thinking, only_close.answer_section, only_close.complete) == ("a b", "ans", True)
    assert split_response("<think>never closes").complete is False
    assert join_response("t", "a") == "t\n</think>\n\na"


def test_units_are_lossless_and_bounded():
    long_paragraph = " ".join(f"Sentence number {i} says something." for i in range(60))
    text = f"Short one.\n\n{long_paragraph}\n\nLast."
    units = atomic_units(text, max_chars=200)
    assert units[0] == "Short one." and units[-1] == "Last."
    assert all(len(u) <= 200 for u in units[1:-1])
    assert " ".join(units).split() == text.split()


def test_sentence_units_join_back_into_the_original_paragraphs():
    text = "First, I need the total. 4 times 18 is 72.\n\nNext, 72 minus 12 is 60. So 60 are left."
    units, joins = unit_layout(text, max_chars=1)  # every sentence a unit
    assert units == ["First, I need the total.", "4 times 18 is 72.", "Next, 72 minus 12 is 60.", "So 60 are left."]
    assert joins == ["\n\n", " ", "\n\n", " "]
    assert join_units(units, joins) == text
    # dropping the sentences that only plan keeps the paragraphs of what remains
    kept = [1, 3]
    assert join_units([units[i] for i in kept], [joins[i] for i in kept]) == "4 times 18 is 72. So 60 are left."
    assert (
        join_units([units[i] for i in (0, 2)], [joins[i] for i in (0, 2)])
        == "First, I need the total.\n\nNext, 72 minus 12 is 60."
    )


@pytest.mark.parametrize("max_chars", [1, 30, 400])
def test_line_breaks_inside_a_paragraph_survive_units(max_chars):
    # a list written one item per line, inside one paragraph: each line ends a sentence
    text = (
        "Let me list the costs.\n1. Pens: 2 × 3 = 6.\n2. Notebook: 5.\nTotal: 6 + 5 = 11. So the answer is 11.\n\nDone."
    )
    units, joins = unit_layout(text, max_chars=max_chars)
    assert join_units(units, joins) == text
    if max_chars == 1:
        assert joins[:4] == ["\n\n", "\n", "\n", "\n"]
        # dropping the announcement keeps the list one item per line
        assert join_units(units[1:4], joins[1:4]) == "1. Pens: 2 × 3 = 6.\n2. Notebook: 5.\nTotal: 6 + 5 = 11."


@pytest.mark.parametrize("max_chars", [1, 400])
def test_a_sentence_too_long_for_one_unit_is_cut_at_line_breaks_then_spaces(max_chars):
    # a display-math block with no sentence end: 300 lines, one of them a wall of 120 words with no break
    lines = [f"x_{{{n}}} = {n} \\cdot 3 = {3 * n} \\\\" for n in range(300)]
    lines[150] = " ".join(f"w{n}" for n in range(120))
    block = "So the terms are\n\\[\n\\begin{aligned}\n" + "\n".join(lines) + "\n\\end{aligned}\n\\]"
    text = f"Let me list them. {block}\n\nSo the answer is 42."
    units, joins = unit_layout(text, max_chars=max_chars, longest=200)
    assert join_units(units, joins) == text  # nothing lost, every line break where it was
    assert max(len(unit) for unit in units) <= 200
    assert units[0] == "Let me list them." and units[-1] == "So the answer is 42."
    assert set(joins[1:-1]) == {"\n", " "}  # the block cut at its lines, and the wall at spaces
    assert any(unit.startswith("w") and join == " " for unit, join in zip(units, joins))
    # a sentence within the bound stays whole, however many lines it has
    short = "First line\nsecond line\nthird line."
    assert unit_layout(short, max_chars=1, longest=200)[0] == [short]


@pytest.mark.parametrize(
    "text, answer",
    [
        ("so \\boxed{\\frac{3}{4}} done", "\\frac{3}{4}"),
        ("The final answer is 42.", "42"),
        ("we get 1,234 apples", "1234"),
        ("nested \\boxed{\\sqrt{x^{2}}}", "\\sqrt{x^{2}}"),
        ("", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("0.5", "\\frac{1}{2}", True),
        ("39", "39.0", True),
        ("\\$18", "18", True),
        ("1,000", "1000", True),
        ("\\$140,\\!000", "140000", True),
        ("10%", "10\\%", True),
        ("\\dfrac{2}{3}", "\\frac{2}{3}", True),
        ("3\\sqrt{2}", "\\sqrt{18}", True),
        ("39", "40", False),
        ("x+1", "1+x", True),
        (None, "1", False),
    ],
)
def test_equivalence_uses_math(a, b, same):
    assert equivalent(a, b) is same


def test_numbers_in_normalises():
    assert numbers_in("costs $1,200.50 and 3 items, 4.0 and -7") == {"1200.5", "3", "4", "7"}
    assert last_boxed("\\boxed{unclosed") is None


def test_token_counter_real_and_fallback(shared_tokenizer, monkeypatch, tmp_path):
    counter = TokenCounter(shared_tokenizer)
    assert counter.count("Hello world, 12 + 30 = 42.") > 5 and counter.count("") == 0
    # the default out of reach (no ../shared, no hub): a missing local folder stands for both, without network
    monkeypatch.setattr("drp.tokens.default_tokenizer", lambda: str(tmp_path / "absent" / "tokenizer"))
    with pytest.warns(UserWarning, match="approximate"):
        fallback = TokenCounter()
    assert fallback.name == APPROXIMATE and fallback.count("two words") == 2
    with pytest.raises(ValueError, match="cannot load tokenizer"):
        TokenCounter(str(tmp_path / "no-such-tokenizer"))


def test_answer_section_after_only_when_the_response_is_thinking_first():
    assert answer_section_after("think", "think\n</think>\n\nanswer") == "answer"
    assert answer_section_after("think", "other\n</think>\n\nanswer") is None
    assert answer_section_after("think", "think and more") is None
    assert answer_section_after(None, "x") is None and answer_section_after("x", None) is None
