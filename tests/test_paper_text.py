"""Reading the `paper` policy's free-text replies (drp/paper_text.py): the layouts the prompts ask for, the
variations small and large teachers write, and the replies that cannot be read."""

from drp.paper_text import CompressText, EchoText, split_closing_answer


def test_echo_steps_span_lines_and_take_common_header_variants():
    reply = (
        "Sure, here are the steps.\n\n**Step 1 (multiplying amounts):** 4 trays of 18 is 72.\nSo 72 cookies.\n"
        "Step 2 [subtracting]: 72 - 12 = 60.\n- Step 3 - [clarify answer]: She fills 10 bags."
    )
    echo, error = EchoText.from_text(reply)
    assert error is None
    assert [(s.skill, s.text) for s in echo.steps] == [
        ("multiplying amounts", "4 trays of 18 is 72.\nSo 72 cookies."),
        ("subtracting", "72 - 12 = 60."),
        ("clarify answer", "She fills 10 bags."),
    ]
    assert EchoText.from_text("4 trays of 18 is 72, so the answer is 10.") == (
        None,
        "the reply has no 'Step N [skill]: text' lines",
    )


def test_compress_reads_actions_rewrites_and_the_path_after_the_last_separator():
    reply = (
        "Step 1 [KEEP]: 4 trays of 18 is 72.\nStep 2 [delete]:\nStep 3 [Multi-step compress]: 72 - 12 = 60, "
        "60 / 6 = 10.\nStep 4 [MULTI_STEP COMPRESS]:\nStep 3 [DELETE]: a second claim on step 3\n"
        "### Pruned reasoning:\n4 trays of 18 is 72; 72 - 12 = 60 and 60 / 6 = 10. The answer is 10."
    )
    result, error = CompressText.from_text(reply)
    assert error is None and result.path.endswith("The answer is 10.")
    stated = result.actions_for(5)
    assert [s.action if s else None for s in stated] == [
        "KEEP",
        "DELETE",
        "MULTI-STEP COMPRESS",
        "MULTI-STEP COMPRESS",
        None,
    ]  # the first claim per step counts
    assert stated[2].text == "72 - 12 = 60, 60 / 6 = 10." and stated[1].text == ""
    assert result.unknown_actions() == []
    odd, _ = CompressText.from_text("Step 1 [SKIP]: x\n=== PRUNED REASONING ===\ny")
    assert odd.unknown_actions() == ["SKIP"]


def test_a_reply_without_a_path_is_an_error_not_a_crash():
    assert CompressText.from_text("Step 1 [KEEP]: 72.")[1].startswith("the reply has no '=== PRUNED REASONING ==='")
    assert CompressText.from_text("Step 1 [KEEP]: 72.\n=== PRUNED REASONING ===\n  ")[1] == (
        "nothing follows the '=== PRUNED REASONING ===' line"
    )
    assert CompressText.from_text(None)[0] is None


def test_the_closing_answer_sentence_is_split_off_once():
    assert split_closing_answer("72 - 12 = 60, and 60 / 6 = 10. The answer is 10.") == (
        "72 - 12 = 60, and 60 / 6 = 10.",
        "The answer is 10.",
    )
    assert split_closing_answer("So 60 / 6 = 10.\n\nThe answer is $10.") == ("So 60 / 6 = 10.", "The answer is $10.")
    assert split_closing_answer("She fills 10 bags.") == ("She fills 10 bags.", "")
