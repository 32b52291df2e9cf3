"""`drp eval` drawing k samples per problem from a real loopback server whose answers depend on the seed, scored
as avg@k, pass@k and maj@k with the thinking/answer token split, against values worked out by hand."""

import json
from pathlib import Path

import pytest
from helpers import eval_args, gsm8k_data_dir
from typer.testing import CliRunner

from drp.cli import app
from drp.testing.scripted_teacher import ScriptedTeacher, Text

QUESTIONS = {"What is 2+3?": "5", "What is 10-4?": "6", "What is 3*3?": "9"}
CUT = "Let me think about three threes and"  # a response cut at the cap: no </think>, no number


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return gsm8k_data_dir(tmp_path / "data", QUESTIONS)


def by_seed(request: dict) -> Text:
    """2+3: right every time. 10-4: right on seed 0, then 7 three times. 3*3: 9, 9.0, 8, then cut at the cap."""
    question, seed = request["messages"][-1]["content"].split("\n")[0], request["seed"]
    answers = {
        "What is 2+3?": ["5"] * 4,
        "What is 10-4?": ["6", "7", "7", "7"],
        "What is 3*3?": ["9", "9.0", "8", None],
    }[question]
    answer = answers[seed % 4]
    if answer is None:
        return Text(CUT, finish_reason="length")
    return Text(f"Thinking about {question} once more.\n</think>\n\nSo \\boxed{{{answer}}}.")


def run_eval(url, out, data_dir, tokenizer, *extra):
    args = eval_args(url, out, data_dir, tokenizer, "--retries", "0", *extra)
    return CliRunner().invoke(app, args, env={"COLUMNS": "250"})


def test_k_samples_scored_as_avg_pass_and_maj_at_k(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(by_seed, models=("student",)) as teacher:
        result = run_eval(teacher.url, out, data_dir, smollm2, "--samples", "4")
    assert result.exit_code == 0, result.output
    requests = teacher.requests
    assert sorted(r["seed"] for r in requests) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # R1's recommended sampling is the default.
    assert all(r["temperature"] == 0.6 and r["top_p"] == 0.95 for r in requests)

    m = json.loads((out / "metrics.json").read_text())["gsm8k"]
    assert m["samples_per_problem"] == {"min": 4, "max": 4}
    assert m["avg@k"]["k"] == 4 and m["avg@k"]["value"] == pytest.approx((1 + 1 / 4 + 2 / 4) / 3)
    assert m["pass@k"]["2"]["value"] == pytest.approx((1 + (1 - 3 / 6) + (1 - 1 / 6)) / 3)
    assert m["pass@k"]["4"]["value"] == 1.0
    assert m["maj@k"]["value"] == pytest.approx(2 / 3)  # 10-4 outvoted by 7; 9 and 9.0 outvote 8
    endings = m["endings"]
    assert (endings["n"], endings["stopped"]["count"], endings["truncated"]["count"]) == (12, 11, 1)
    assert endings["no_think_close"]["count"] == 1 and endings["no_answer"]["count"] == 1

    from drp.tokens import TokenCounter

    count = TokenCounter(str(smollm2)).count
    samples = [json.loads(line) for line in open(out / "samples.jsonl")]
    for sample in samples:
        response = sample["response"]
        assert sample["thinking_tokens"] + sample["answer_tokens"] == sample["tokens"] == count(response)
        if sample["think_closed"]:
            head = response[: response.index("</think>") + len("</think>")]
            assert sample["thinking_tokens"] == count(head) and sample["answer_tokens"] > 0
        else:
            assert response == CUT and sample["thinking_tokens"] == count(CUT) and sample["answer_tokens"] == 0
    thinking = sorted(s["thinking_tokens"] for s in samples)
    assert m["token_split"]["thinking"]["median"] == pytest.approx((thinking[5] + thinking[6]) / 2)
    wrong = [s["tokens"] for s in samples if not s["correct"]]
    assert m["token_split"]["incorrect"]["n"] == 5
    assert m["token_split"]["incorrect"]["tokens"]["mean"] == pytest.approx(sum(wrong) / 5)
    assert "k samples per problem" in result.output and "58.3% ±" in result.output and "@4 100.0%" in result.output


def test_more_samples_later_draw_only_the_new_seeds(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(by_seed, models=("student",)) as teacher:
        assert run_eval(teacher.url, out, data_dir, smollm2, "--samples", "2").exit_code == 0
        first = json.loads((out / "metrics.json").read_text())["gsm8k"]
        result = run_eval(teacher.url, out, data_dir, smollm2, "--samples", "4")
    assert result.exit_code == 0, result.output
    assert sorted(r["seed"] for r in teacher.requests[6:]) == [2, 2, 2, 3, 3, 3]
    assert first["avg@k"]["k"] == 2 and list(first["pass@k"]) == ["1", "2"]
    # 3*3 on seeds 0 and 1 gives 9 and 9.0: one answer, right
    assert first["maj@k"]["value"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["avg@k"]["k"] == 4


def test_greedy_k_samples_get_a_note(tmp_path, data_dir, smollm2):
    with ScriptedTeacher(by_seed, models=("student",)) as teacher:
        result = run_eval(
            teacher.url, tmp_path / "eval", data_dir, smollm2, "--samples", "2", "--temperature", "0", "--limit", "1"
        )
    assert result.exit_code == 0, result.output
    assert "2 samples per problem at temperature 0 are (near) copies" in result.output
