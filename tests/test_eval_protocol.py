"""The paper's evaluation protocol: its requests, caps and lm-eval's strict and flexible answer filters."""

import pytest

from drp.evals.protocols.lm_eval_filters import exact_match, flexible_answer, lm_eval_scores, strict_answer
from drp.evals.protocols.paper import PAPER_GSM8K_CAP, PAPER_OTHER_CAP, is_gsm8k, paper_cap, paper_request
from drp.sampling.client import cut_at_stop


def test_gsm8k_gets_the_zero_shot_cot_prompt_as_a_raw_completion():
    request = paper_request("gsm8k", "Tom has 3 {apples}. How many?")
    assert request.raw and not request.messages
    assert request.prompt == "Q: Tom has 3 {apples}. How many?\nA: Let's think step by step."
    assert request.stop == ("Q:", "</s>", "<|im_end|>")  # lm-eval's end markers too
    assert paper_request("gsm8k", "x", eos="<｜end▁of▁sentence｜>").stop == (
        "Q:",
        "</s>",
        "<|im_end|>",
        "<｜end▁of▁sentence｜>",
    )
    assert paper_request("gsm8k", "x", eos="</s>").stop == ("Q:", "</s>", "<|im_end|>")  # each once
    assert paper_cap("gsm8k") == PAPER_GSM8K_CAP == 40_000


@pytest.mark.parametrize("name", ["gsm8k", "gsm8k:train", "openai/gsm8k", "GSM8K"])
def test_every_spelling_of_gsm8k_is_gsm8k(name):
    assert is_gsm8k(name)


@pytest.mark.parametrize("name", ["math500", "aime24", "amc23", "my_problems", "gsm8k_hard"])
def test_other_benchmarks_get_the_math_layout_and_the_long_cap(name):
    request = paper_request(name, "Find $x$ if $\\frac{x}{2}=1$.")
    assert request.prompt == "Problem: Find $x$ if $\\frac{x}{2}=1$.\nAnswer:"
    assert request.stop == ("Problem:", "</s>", "<|im_end|>")
    assert paper_cap(name) == PAPER_OTHER_CAP == 130_000


def test_the_text_is_cut_at_the_first_stop_string_the_server_kept():
    assert cut_at_stop("so 5.\n\nQ:", ("Q:",)) == "so 5.\n\n"
    assert cut_at_stop("so 5.", ("Q:",)) == "so 5."
    assert cut_at_stop("so 5.\n\nQ: Next one\nA:", ("Q:",)) == "so 5.\n\n"  # a server that ran past it


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3 + 4 = 7. The answer is 7.", "7"),
        ("The answer is 1,250.", "1,250"),
        ("The answer is -3 apples", "-3"),
        ("The answer is 4. Then again, the answer is 5.", "4."),  # the first match counts; its dot goes later
        ("So the final answer is \\boxed{7}.", None),
        ("the answer is 7.", None),  # case matters for the strict filter
        ("The answer is 7", None),  # one character must follow the number
    ],
)
def test_strict_filter(text, expected):
    assert strict_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She pays $1,000.", "$1,000."),
        ("2 + 3 = 5 and 5 * 2 = 10", "10"),
        ("\\boxed{42}", "42"),
        ("no digits at all", None),
        ("x = 7", "7"),
    ],
)
def test_flexible_filter_takes_the_last_number(text, expected):
    assert flexible_answer(text) == expected


@pytest.mark.parametrize(
    "extracted, gold, same",
    [
        ("1,250", "1250", True),
        ("$1,000.", "1000", True),
        ("18.00", "18", False),  # exact string match after the ignore rules, as lm-eval scores it
        ("-3", "-3", True),
        (None, "3", False),
    ],
)
def test_exact_match_after_the_ignore_rules(extracted, gold, same):
    assert exact_match(extracted, gold) is same


def test_scores_side_by_side():
    scores = lm_eval_scores("Half of 36 is 18. The answer is 18.\n\n", "18")
    assert (scores.strict, scores.strict_correct) == ("18", True)
    assert (scores.flexible, scores.flexible_correct) == ("18.", True)
    boxed_only = lm_eval_scores("So we get \\boxed{18}", "18")
    assert boxed_only.strict is None and not boxed_only.strict_correct and boxed_only.flexible_correct


def test_protocols_are_objects_in_one_registry_by_name():
    from drp.evals.protocols import PROTOCOLS, Protocol, ProtocolError, protocol_named, recorded_protocol, register

    assert list(PROTOCOLS) == ["default", "paper"] and protocol_named("paper").name == "paper"
    with pytest.raises(ProtocolError, match=r"^unknown protocol 'lm-eval'; choose one of default, paper$"):
        protocol_named("lm-eval")
    # a folder from before protocols (or from elsewhere) reads as the default's
    assert recorded_protocol({}).name == recorded_protocol({"protocol": "future"}).name == "default"

    class Again(Protocol):
        name = "paper"

    with pytest.raises(ProtocolError, match="registered twice"):
        register(Again)
    assert type(PROTOCOLS["paper"]).__name__ == "PaperProtocol"
