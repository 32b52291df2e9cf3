"""The derivation check: a pruned reasoning must still carry the computation that yields its answer."""

from __future__ import annotations

import json

import pytest

from drp.agents.verifier import derivation_of
from drp.answers import equivalent, extract_answer
from drp.derivation import check, needed_passages
from drp.layout import split_response

# Two traces the issue saw accepted although their pruned reasoning only asserts the answer.
TUTORING = "Given a 7-day week, how much does Alex charge for 2 weeks of tutoring if she charges $12 per day?"
TUTORING_THINKING = (
    "First, I need to determine how many days are in 2 weeks. Since there are 7 days in a week, 2 weeks would be "
    "14 days.\n\nNext, I'll calculate the total earnings by multiplying the number of days by the daily rate. Alex "
    "charges $12 per day, so I'll multiply 14 days by $12.\n\n14 multiplied by 12 equals $168."
)
GARDEN = ("My mom went to a gardening shop. She bought a set of pots for $19 and a sack of garden soil for $26. At "
          "checkout, she used a coupon for $7 off. How much money did my mom spend at the gardening shop?")
GARDEN_THINKING = (
    "First, I need to calculate the total cost of the items before applying the coupon. The pots cost $19 and the "
    "garden soil costs $26. Adding these together gives $19 plus $26 equals $45.\n\nNext, I'll subtract the $7 "
    "coupon from the total cost of $45. So, $45 minus $7 equals $38.\n\nTherefore, my mom spent a total of $38 at "
    "the gardening shop."
)


def test_a_bare_assertion_is_not_a_derivation():
    bare = ("The reasoning is based on the given information and the standard arithmetic operations. Alex charges "
            "for 2 weeks of tutoring. The result is $168.")
    result = check(bare, "168", TUTORING, TUTORING_THINKING)
    assert not result.answer_derived and result.answer_mentioned
    assert "states 168 without the computation that yields it" in result.explain("168")


def test_a_path_that_dropped_the_discount_step_is_not_a_derivation():
    dropped = ("The pots cost $19 and the garden soil costs $26. Adding these together gives $19 plus $26 equals "
               "$45. Therefore, my mom spent a total of $38 at the gardening shop.")
    assert not check(dropped, "38", GARDEN, GARDEN_THINKING).answer_derived
    assert check(GARDEN_THINKING, "38", GARDEN, GARDEN_THINKING).lost_in(dropped) == ["7 (used in 45 - 7 = 38)"]


@pytest.mark.parametrize("pruned", [
    "2 weeks would be 14 days. 14 multiplied by 12 equals $168.",
    "Since there are 7 days in a week, 2 weeks would be 14 days. So 14 × $12 = $168.",
    "2 weeks is 14 days; at $12 per day that is \\(14 \\times 12 = 168\\).",
])
def test_written_computations_pass(pruned):
    assert check(pruned, "168", TUTORING, TUTORING_THINKING).answer_derived


def test_implicit_steps_need_their_operands_written():
    question = "Patricia has 30 roses. She gives away 24 and then buys 15 more. How many roses does she have?"
    full = "Patricia starts with 30 roses. She gives away 24, leaving her with 6 roses. Then she buys 15 more, so 21."
    assert check(full, "21", question, full).answer_derived
    # "leaving her with 6" only follows from 30 - 24 when the 30 is still written
    assert not check("She gives away 24, leaving her with 6 roses. Then she buys 15 more, so 21.", "21", question,
                     full).answer_derived


def test_the_steps_that_carry_the_answer_are_found():
    steps = ["First, I need to calculate the total cost of the items before applying the coupon.",
             "The pots cost $19 and the garden soil costs $26.", "Adding these together gives $19 plus $26 equals $45.",
             "Next, I'll subtract the $7 coupon from the total cost of $45.", "So, $45 minus $7 equals $38.",
             "Therefore, my mom spent a total of $38 at the gardening shop."]
    assert needed_passages(steps, GARDEN_THINKING, "38", GARDEN) == {
        3: ("computes 19 + 26 = 45", ["45", "19", "26"]), 5: ("computes 45 - 7 = 38", ["38", "7", "45"])}


def test_numbers_the_original_never_derives_count_as_given():
    question = "Jen has 3 fish. Each needs $1 of food a day. How much does she spend on food in May?"
    original = "May has 31 days. The daily cost is 3 * $1 = $3. For May: $3 * 31 = $93."
    assert check(original, "93", question, original).answer_derived  # 31 is a fact, not a lost computation
    assert not check("For May she spends $93.", "93", question, original).answer_derived


def test_rules_pruned_real_traces_still_derive_their_answers(shared):
    """Every real trace whose original derives its answer still does after the rules policy prunes it."""
    from drp.agents import rules
    from drp.agents.pruner import apply_plan
    from drp.policy import RulesSettings
    from drp.text import unit_layout

    source = shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"
    checked = 0
    for line in source.read_text().splitlines()[:300]:
        record = json.loads(line)
        split = split_response(record["response"])
        answer = extract_answer(split.answer_section)
        if not split.complete or not equivalent(record["gold_answer"], answer):
            continue
        steps = rules.label_steps(rules.unit_steps(*unit_layout(split.thinking)))
        _, pruned = apply_plan(steps, rules.plan(steps, answer, RulesSettings(), record["question"]))
        # as the rules policy does: the answer section stays (shortened) when the thinking stops short of the answer
        section = rules.shorten_answer_section(split.answer_section, record["question"])
        found = derivation_of(pruned, section, answer, record["question"], split.thinking, split.answer_section)
        assert found is None or found[0].answer_derived, (record["id"], found[0].explain(answer), found[1])
        checked += 1
    assert checked > 200
