"""`drp eval --protocol paper` against a scripted server: raw completions, greedy, the paper's caps clipped to
the model's context, lm-eval's strict and flexible scores beside math-verify, the protocol on record and
`drp compare` refusing to mix protocols; a chat-only server gets one clear error."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import eval_args
from typer.testing import CliRunner

from drp.cli import app
from drp.testing.scripted_teacher import ScriptedTeacher, Text

GOLDS = ["12", "30", "7"]


@pytest.fixture
def data_dir(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "gsm8k").mkdir(parents=True)
    (root / "math500").mkdir(parents=True)
    with open(root / "gsm8k" / "test.jsonl", "w") as handle:
        for i, gold in enumerate(GOLDS):
            handle.write(json.dumps({"question": f"Problem {i}: what is {gold}?", "answer": f"#### {gold}"}) + "\n")
    with open(root / "math500" / "test.jsonl", "w") as handle:
        handle.write(json.dumps({"problem": "Find $x$ if $x = 7$.", "answer": "7"}) + "\n")
    return root


def paper_student(request: dict) -> Text:
    """Answers raw prompts only (a chat request here is a bug): problem 0 in lm-eval's strict format, problem 1
    boxed only, problem 2 wrong; then it runs on into the next question, as a base model does."""
    assert "prompt" in request and "messages" not in request
    prompt = request["prompt"]
    if not prompt.startswith(("Q: Problem", "Problem: ")):
        return Text("x")  # the one-token probe of /v1/completions
    if prompt.startswith("Problem: "):
        return Text(" x is \\boxed{7}.\n\nProblem: next")
    index = int(prompt.split(":")[1].split()[1])
    body = {
        0: f" Step one. The answer is {GOLDS[0]}.",
        1: f" So it is \\boxed{{{GOLDS[1]}}}.",
        2: " The answer is 99.",
    }[index]
    return Text(body + "\n\nQ: What comes next?\nA: 5")


def paper_eval(url, model, out, data_dir, tokenizer, *extra, benchmarks="gsm8k"):
    paper = ("--retries", "0", "--protocol", "paper", *extra)
    return CliRunner().invoke(app, eval_args(url, out, data_dir, tokenizer, *paper, model=model, benchmarks=benchmarks))


def sampled(teacher) -> list[dict]:
    return [r for r in teacher.requests if r.get("max_tokens") != 1]


def test_raw_greedy_requests_with_the_paper_caps_and_three_scores(tmp_path, data_dir, smollm2):
    out = tmp_path / "paper"
    with ScriptedTeacher(paper_student, models=("student",)) as teacher:
        result = paper_eval(teacher.url, "student", out, data_dir, smollm2, benchmarks="gsm8k,math500")
        requests = sampled(teacher)
    assert result.exit_code == 0, result.output

    gsm8k = [r for r in requests if r["prompt"].startswith("Q:")]
    assert len(gsm8k) == 3  # one greedy sample per problem: --seeds defaults to 1 under this protocol
    assert {r["prompt"] for r in gsm8k} == {
        f"Q: Problem {i}: what is {g}?\nA: Let's think step by step." for i, g in enumerate(GOLDS)
    }
    # lm-eval's stops: the task's own, its end markers, the model's EOS (SmolLM2's is <|im_end|>: listed once)
    assert all(r["stop"] == ["Q:", "</s>", "<|im_end|>"] and r["temperature"] == 0 and r["top_p"] == 1 for r in gsm8k)
    assert all(r["add_special_tokens"] is False for r in requests)  # no BOS on raw prompts, as lm-eval sends them
    assert {r["max_tokens"] for r in gsm8k} == {40_000}  # "student" is no local folder: no context to clip to
    [math] = [r for r in requests if r["prompt"].startswith("Problem:")]
    assert math["stop"] == ["Problem:", "</s>", "<|im_end|>"] and math["max_tokens"] == 130_000

    samples = {s["problem_id"]: s for s in map(json.loads, open(out / "samples.jsonl")) if s["benchmark"] == "gsm8k"}
    assert all("Q:" not in s["response"] for s in samples.values())  # cut where lm-eval cuts
    first, boxed, wrong = (samples[p] for p in sorted(samples))
    assert (first["strict_correct"], first["flexible_correct"], first["correct"]) == (True, True, True)
    assert (boxed["strict_answer"], boxed["flexible_correct"], boxed["correct"]) == (None, True, True)
    assert (wrong["strict_answer"], wrong["strict_correct"], wrong["correct"]) == ("99", False, False)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["gsm8k"]["protocol"] == "paper" and metrics["gsm8k"]["max_tokens"] == 40_000
    assert metrics["gsm8k"]["lm_eval"] == {"strict": pytest.approx(1 / 3), "flexible": pytest.approx(2 / 3)}
    assert metrics["gsm8k"]["score"] == "flexible"  # the default headline
    assert metrics["gsm8k"]["accuracy"]["mean"] == pytest.approx(2 / 3)
    assert metrics["math500"]["max_tokens"] == 130_000
    # off GSM8K the prompt is an assumption, said in metrics.json, and lm-eval's GSM8K filters are not applied
    assert metrics["math500"]["score"] == "math-verify" and "assumed prompt" in metrics["math500"]["prompt_note"]
    assert "lm_eval" not in metrics["math500"]
    [math_sample] = [s for s in map(json.loads, open(out / "samples.jsonl")) if s["benchmark"] == "math500"]
    assert "strict_correct" not in math_sample and math_sample["correct"] is math_sample["math_verify_correct"] is True
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"] == "paper" and config["decoding"]["max_tokens"] is None
    assert config["paper_caps"] == {"gsm8k": 40_000, "math500": 130_000}
    assert "protocol: paper" in result.output and "strict" in result.output


def test_the_headline_score_is_a_choice_and_rescoring_draws_nothing(tmp_path, data_dir, smollm2):
    from drp.evals.compare import CompareError, compare

    strict, verify = tmp_path / "strict", tmp_path / "verify"
    with ScriptedTeacher(paper_student, models=("student",)) as teacher:
        assert paper_eval(teacher.url, "student", strict, data_dir, smollm2).exit_code == 0
        drawn = len(sampled(teacher))
        rescored = paper_eval(teacher.url, "student", strict, data_dir, smollm2, "--score", "strict")
        assert rescored.exit_code == 0, rescored.output
        assert len(sampled(teacher)) == drawn  # the samples keep every score: nothing is drawn again
        assert paper_eval(teacher.url, "student", verify, data_dir, smollm2, "--score", "math-verify").exit_code == 0
    metrics = json.loads((strict / "metrics.json").read_text())["gsm8k"]
    assert metrics["score"] == "strict" and metrics["accuracy"]["mean"] == pytest.approx(1 / 3)
    assert "strict" in rescored.output
    # drp compare reads each folder's headline, and refuses to set two different ones side by side
    shutil.copytree(strict, tmp_path / "strict2")
    rows = compare([strict, tmp_path / "strict2"])["benchmarks"]["gsm8k"]["rows"]
    assert [row["accuracy"]["mean"] for row in rows] == [pytest.approx(1 / 3)] * 2
    with pytest.raises(CompareError, match="different headline scores"):
        compare([strict, verify])


def test_transformers_serve_gets_no_field_it_would_refuse():
    """`transformers serve` answers 422 to fields it does not know: add_special_tokens goes to the others only."""
    from drp.endpoint import EndpointSettings
    from drp.sampling.client import Decoding, Endpoint

    with ScriptedTeacher(lambda request: Text(" 5"), models=("student",)) as teacher:
        endpoint = Endpoint(EndpointSettings(url=teacher.url, model="student", max_retries=0))
        for kind in ("other", "transformers"):
            endpoint.kind = kind
            completion = endpoint.complete_raw("Q: 2+3?\nA:", ("Q:",), Decoding(0.0, 1.0, 8), seed=0)
            assert completion.text == " 5" and completion.error is None
        other, transformers = teacher.requests
    assert other["add_special_tokens"] is False and "add_special_tokens" not in transformers


def test_score_is_refused_outside_the_paper_protocol(tmp_path, data_dir, smollm2):
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            str(tmp_path / "x"),
            "--data-dir",
            str(data_dir),
            "--score",
            "strict",
        ],
    )
    assert result.exit_code == 2 and "--score chooses the headline under --protocol paper" in result.output


def test_caps_are_clipped_to_the_served_models_context_with_a_warning(tmp_path, data_dir, smollm2):
    context = json.loads((Path(smollm2) / "config.json").read_text())["max_position_embeddings"]
    with ScriptedTeacher(paper_student, models=(str(smollm2),)) as teacher:
        result = paper_eval(teacher.url, str(smollm2), tmp_path / "clipped", data_dir, smollm2)
        caps = [r["max_tokens"] for r in sampled(teacher)]
        overridden = paper_eval(teacher.url, str(smollm2), tmp_path / "small", data_dir, smollm2, "--max-tokens", "64")
        small = [r["max_tokens"] for r in sampled(teacher)][len(caps) :]
    assert result.exit_code == 0, result.output
    assert "warning: gsm8k: a cap of 40000 tokens does not fit the served model's context" in result.output
    assert all(context - 40 < cap < context for cap in caps)  # the context less each (short) prompt
    assert overridden.exit_code == 0, overridden.output
    assert small == [64, 64, 64] and "does not fit" not in overridden.output


def test_a_chat_only_server_gets_one_clear_error(tmp_path, data_dir, smollm2):
    with ScriptedTeacher(paper_student, models=("student",), completions=False) as teacher:
        result = paper_eval(teacher.url, "student", tmp_path / "chat-only", data_dir, smollm2)
        asked = len(teacher.requests)
    assert result.exit_code == 2
    assert "has no /v1/completions endpoint" in result.output and "vllm" in result.output
    assert asked == 0 and not (tmp_path / "chat-only" / "samples.jsonl").exists()


def test_sampling_settings_are_refused_under_the_paper_protocol(tmp_path, data_dir, smollm2):
    result = paper_eval("http://127.0.0.1:9/v1", "student", tmp_path / "x", data_dir, smollm2, "--temperature", "0.6")
    assert result.exit_code == 2 and "greedily" in result.output


def test_compare_refuses_runs_of_different_protocols(tmp_path, data_dir, smollm2):
    def chat_student(request):
        if "prompt" in request:
            return Text("x")
        index = int(request["messages"][-1]["content"].split(":")[0].split()[1])
        return Text(f"\\boxed{{{GOLDS[index]}}}")

    with ScriptedTeacher(paper_student, models=("student",)) as teacher:
        assert paper_eval(teacher.url, "student", tmp_path / "paper", data_dir, smollm2).exit_code == 0
    with ScriptedTeacher(chat_student, models=("student",)) as teacher:
        default = CliRunner().invoke(
            app, eval_args(teacher.url, tmp_path / "default", data_dir, smollm2, "--seeds", "1")
        )
    assert default.exit_code == 0, default.output
    assert json.loads((tmp_path / "default" / "metrics.json").read_text())["gsm8k"]["protocol"] == "default"
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path / "default"), str(tmp_path / "paper"), "--out", str(tmp_path / "report")]
    )
    assert result.exit_code == 2
    assert "different protocols (default: default, paper: paper)" in result.output


def test_a_prompt_template_is_refused_under_the_paper_protocol(tmp_path, data_dir, smollm2):
    result = paper_eval(
        "http://127.0.0.1:9/v1", "student", tmp_path / "x", data_dir, smollm2, "--prompt-template", "plain"
    )
    assert result.exit_code == 2 and "--prompt-template does not apply" in result.output


def test_a_folder_from_before_protocols_resumes_as_the_default_protocol(tmp_path, data_dir, smollm2):
    def chat_student(request):
        index = int(request["messages"][-1]["content"].split(":")[0].split()[1])
        return Text(f"\\boxed{{{GOLDS[index]}}}")

    out = tmp_path / "old"
    args = eval_args("", out, data_dir, smollm2, "--seeds", "1")
    with ScriptedTeacher(chat_student, models=("student",)) as teacher:
        args[2] = teacher.url
        assert CliRunner().invoke(app, [*args, "--limit", "2"]).exit_code == 0
        config = json.loads((out / "config.json").read_text())
        del config["protocol"]  # as written before protocols existed
        (out / "config.json").write_text(json.dumps(config))
        resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert "1 samples to draw (2 already done)" in resumed.output
