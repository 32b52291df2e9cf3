"""Teacher cost: `--teacher-price IN,OUT` or a named price (built-in table, `--prices-file`, `DRP_PRICES`), the batch
discount, cost per trace and per run in `drp stats` and the report, unknown usage shown as unknown, and
`drp run --estimate` projecting a whole dataset from a seeded sample."""

from __future__ import annotations

import json
import re

import pytest
from helpers import EXAMPLES, db_of, drp, example_records, traces_of, write_jsonl

from drp.costs import Price, price_table, resolve_price
from drp.estimate import project
from drp.paths import runs_dir
from drp.testing.scripted_batches import ScriptedBatchAPI
from drp.testing.scripted_teacher import ScriptedTeacher, Text
from drp.testing.skill_aware_responder import sensible


def _token_sums(run_id: str) -> tuple[int, int]:
    row = next(db_of(run_id).query("select sum(input_tokens) i, sum(output_tokens) o from calls where llm"))
    return row["i"], row["o"]


def test_stats_and_report_show_cost_per_trace_and_per_run(tmp_path):
    with ScriptedTeacher(sensible) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "priced",
            "--quiet",
            "--teacher-price",
            "2.5,10",
        )
    assert result.exit_code == 0, result.output
    spent_in, spent_out = _token_sums("priced")
    expected = (spent_in * 2.5 + spent_out * 10) / 1e6
    cost = json.loads(drp("stats", "priced", "--json").output)["cost"]
    assert cost["total"] == pytest.approx(expected) and cost["per_trace"] == pytest.approx(expected / 8)
    assert cost["unknown_traces"] == 0 and cost["price"]["input"] == 2.5
    text = drp("stats", "priced").output
    assert f"teacher cost ${expected:,.4f} · per trace ${expected / 8:,.4f}" in text
    # Another price for the same run, asked for afterwards.
    again = json.loads(drp("stats", "priced", "--json", "--teacher-price", "gpt-4o-mini").output)["cost"]
    assert again["total"] == pytest.approx((spent_in * 0.15 + spent_out * 0.6) / 1e6)
    report = tmp_path / "r.html"
    assert drp("report", "priced", "--out", report).exit_code == 0
    index = json.loads(
        re.search(r'<script type="application/json" id="drp-index">(.*?)</script>', report.read_text(), re.S).group(1)
    )
    assert index["summary"]["cost"]["total"] == pytest.approx(expected)
    row = next(r for r in index["rows"] if r["id"] == "demo-001")
    trace = traces_of("priced")["demo-001"]
    assert row["cost"] == pytest.approx(
        (trace["teacher_input_tokens"] * 2.5 + trace["teacher_output_tokens"] * 10) / 1e6
    )


def test_a_named_price_from_your_table_with_the_batch_discount(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("currency: EUR\nmodels:\n  my-teacher: {input: 4, output: 16, batch_discount: 0.5}\n")
    with ScriptedBatchAPI(sensible) as api:
        result = drp(
            "run",
            EXAMPLES,
            "--teacher-url",
            api.url,
            "--teacher-model",
            "my-teacher",
            "--run-id",
            "cheap",
            "--quiet",
            "--teacher-mode",
            "batch",
            "--batch-poll-seconds",
            "0.05",
            "--prices-file",
            table,
        )
    assert result.exit_code == 0, result.output
    spent_in, spent_out = _token_sums("cheap")
    cost = json.loads(drp("stats", "cheap", "--json").output)["cost"]
    assert cost["batch"] and cost["currency"] == "EUR"  # priced by the entry named like --teacher-model
    assert cost["total"] == pytest.approx((spent_in * 4 + spent_out * 16) / 1e6 * 0.5)
    assert "batch −50%" in drp("stats", "cheap").output


def test_missing_usage_is_unknown_not_zero():
    def responder(request):
        reply = sensible(request)
        return Text(reply.content, usage=False) if "label each step" in request["messages"][0]["content"] else reply

    with ScriptedTeacher(responder) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "nousage",
            "--quiet",
            "--teacher-price",
            "1,1",
        )
    assert result.exit_code == 0, result.output
    classifier = list(db_of("nousage").query("select input_tokens, output_tokens from calls where node = 'classifier'"))
    assert classifier and all(c["input_tokens"] is None and c["output_tokens"] is None for c in classifier)
    reached = [t for t in traces_of("nousage").values() if t["teacher_calls"]]
    assert reached and all(t["teacher_input_tokens"] is None for t in reached)  # not a partial sum
    stats = json.loads(drp("stats", "nousage", "--json").output)
    # the run's tokens and cost are unknown, not the sum of what is known
    assert stats["cost"]["unknown_traces"] == len(reached) and stats["cost"]["total"] is None
    assert stats["cost"]["per_trace"] is None and stats["teacher_input_tokens_per_trace"] is None
    shown = drp("stats", "nousage").output
    assert "teacher cost unknown" in shown and f"{len(reached)} traces without token usage" in shown


def test_price_specs_and_table(monkeypatch, tmp_path):
    assert resolve_price("3,12", None) == Price(3.0, 12.0)
    assert resolve_price(None, "gpt-4o").name == "gpt-4o" and resolve_price(None, "some-local-model") is None
    assert Price(2, 8, batch_discount=0.5).cost(1_000_000, 500_000, batch=True) == pytest.approx(3.0)
    assert Price(2, 8).cost(None, 10) is None
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  gpt-4o: {input: 1, output: 2}\n")
    monkeypatch.setenv("DRP_PRICES", str(extra))
    assert price_table()["gpt-4o"].input == 1.0  # the user's entry wins
    result = drp(
        "run",
        EXAMPLES,
        "--teacher-url",
        "http://127.0.0.1:9/v1",
        "--teacher-model",
        "m",
        "--run-id",
        "bad",
        "--teacher-price",
        "nosuch",
    )
    assert result.exit_code == 2 and "no price named 'nosuch'" in result.output
    assert not (runs_dir() / "bad").exists()


def test_estimate_projects_the_whole_dataset_from_a_seeded_sample(tmp_path):
    records = [{**r, "id": f"{r['id']}-{k}"} for k in range(10) for r in example_records()]  # 80 traces
    source = write_jsonl(tmp_path / "many.jsonl", records)
    outputs = []
    with ScriptedTeacher(sensible) as teacher:
        for _ in range(2):
            result = drp(
                "run",
                source,
                "--teacher-url",
                teacher.url,
                "--teacher-model",
                "gpt-4o",
                "--run-id",
                "est",
                "--estimate",
                "--estimate-sample",
                "8",
                "--seed",
                "3",
                "--quiet",
            )
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
    # The same sample and the same figures (wall times aside).
    assert _timeless(outputs[0]) == _timeless(outputs[1])
    assert len(teacher.requests) <= 2 * 8 * 3  # only the sample was sent
    assert not (runs_dir() / "est").exists()  # nothing kept
    text = outputs[0]
    assert "estimate for 80 traces from a sample of 8 (seed 3" in text
    total, per_trace = (
        float(x.replace(",", ""))
        for x in re.search(
            r"teacher input tokens\s+([\d,]+) \(95% CI [\d,]+–[\d,]+\), ([\d,]+) per trace", text
        ).groups()
    )
    assert total == pytest.approx(per_trace * 80, rel=0.01)
    assert re.search(r"cost \$[\d.]+ \(95% CI \$[\d.]+–\$[\d.]+\), \$[\d.]+ per trace, at gpt-4o", text)
    assert re.search(r"time .* at concurrency 8", text)


def test_the_estimate_interval_narrows_as_the_sample_covers_the_dataset():
    values = [0.0, 3400.0, 2900.0, 4100.0, 0.0, 3600.0, 3300.0, 2800.0, 3900.0, 3500.0]
    far = project(values, 100_000)  # a sample of a large dataset: the plain t-interval of the mean
    assert far.low < far.mean < far.high and far.total == pytest.approx(far.mean * 100_000)
    most = project(values, 15)
    assert most.mean == far.mean and (most.high - most.low) < 0.65 * (far.high - far.low)  # sqrt(5/14) = 0.60
    whole = project(values, 10)  # every record sampled: the total is known
    assert whole.low == whole.high == whole.mean and whole.total == pytest.approx(sum(values))


def _timeless(text: str) -> list[str]:
    lines = re.sub(r"the sample took [\d.]+s", "", text).splitlines()
    return [line for line in lines if not line.startswith("  time")]
