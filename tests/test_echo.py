"""Echo checks: an echo must be the original text, and the paper's actions must agree with its pruned path."""

from __future__ import annotations

from drp.echo import action_agreement, check_echo

ORIGINAL = (
    "First, I need to calculate 5% of the original price of $140. To do this, I'll multiply 140 by 0.05, "
    "which gives me $7.\n\nNext, I'll subtract the discount. So, $140 minus $7 equals $133."
)
FAITHFUL = [
    "First, I need to calculate 5% of the original price of $140.",
    "To do this, I'll multiply 140 by 0.05, which gives me $7.",
    "Next, I'll subtract the discount. So, $140 minus $7 equals $133.",
]


def test_a_faithful_echo_covers_the_original_and_maps_back_to_it():
    echo = check_echo(ORIGINAL, FAITHFUL)
    assert echo.coverage == 1.0 and echo.faithfulness == [1.0, 1.0, 1.0] and echo.unfaithful(0.8) == []
    assert [ORIGINAL[start:end] for start, end in echo.spans] == FAITHFUL


def test_small_differences_of_form_do_not_count():
    retyped = [step.replace("I'll", "I'll").replace("$", "\\$") for step in FAITHFUL]
    retyped[1] = retyped[1].upper()
    assert check_echo(ORIGINAL, retyped).coverage == 1.0


def test_an_invented_echo_is_measured_as_such():
    invented = ["Understand the problem.", "No hesitation was needed.", "So, $140 minus $7 equals $133."]
    echo = check_echo(ORIGINAL, invented)
    assert echo.coverage < 0.3
    assert echo.unfaithful(0.8) == [1, 2]
    assert echo.spans[1] is None


def test_a_skipped_step_lowers_coverage_only():
    echo = check_echo(ORIGINAL, [FAITHFUL[0], FAITHFUL[2]])
    assert 0.4 < echo.coverage < 0.8 and echo.unfaithful(0.8) == []


def test_actions_must_agree_with_the_pruned_path():
    path = "To do this, I'll multiply 140 by 0.05, which gives me $7. So, $140 minus $7 equals $133."
    assert action_agreement(FAITHFUL, ["DELETE", "KEEP", "COMPRESS"], path) == []
    problems = action_agreement(FAITHFUL, ["KEEP", "KEEP", "KEEP"], "The result is $133.")
    assert problems[0] == "step 1 is KEEP but only 0% of it is in the pruned reasoning" and len(problems) == 3
    assert action_agreement(FAITHFUL, ["KEEP", "DELETE", "KEEP"], ORIGINAL) == [
        "step 2 is DELETE but 100% of it is still in the pruned reasoning"
    ]
