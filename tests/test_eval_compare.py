"""`drp compare` on eval folders made by `drp eval` against scripted students with known outcomes."""

import json
from pathlib import Path

import pytest
from helpers import eval_args
from scipy.stats import binomtest, wilcoxon
from typer.testing import CliRunner

from drp.cli import app
from drp.testing.scripted_teacher import ScriptedTeacher, Text

GOLDS = [str(10 + i) for i in range(8)]


@pytest.fixture
def data_dir(tmp_path) -> Path:
    root = tmp_path / "data"
    for name, field in (("gsm8k", "question"), ("math500", "problem")):
        (root / name).mkdir(parents=True)
        with open(root / name / "test.jsonl", "w") as handle:
            for i, gold in enumerate(GOLDS):
                answer = f"#### {gold}" if name == "gsm8k" else gold
                handle.write(json.dumps({field: f"Problem {i}: what is {gold}?", "answer": answer}) + "\n")
    return root


def student(solves: set[int], words: int):
    """Solves the given problems; its reasoning is `words` words long (plus the problem index, so that
    per-problem token counts differ)."""

    def reply(request):
        index = int(request["messages"][-1]["content"].split(":")[0].split()[1])
        answer = GOLDS[index] if index in solves else "0"
        padding = " ".join(["step"] * (words + index))
        return Text(f"{padding}\n</think>\n\n\\boxed{{{answer}}}")

    return reply


def make_eval(out, data_dir, tokenizer, responder, benchmarks="gsm8k", limit=None, seeds=2):
    args = eval_args("", out, data_dir, tokenizer, "--seeds", str(seeds), "--retries", "0", benchmarks=benchmarks)
    if limit:
        args += ["--limit", str(limit)]
    with ScriptedTeacher(responder, models=("student",)) as teacher:
        args[2] = teacher.url
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def per_problem_tokens(out: Path) -> list[float]:
    rows = [json.loads(line) for line in open(out / "samples.jsonl")]
    by_problem = {}
    for row in rows:
        if row["benchmark"] == "gsm8k":
            by_problem.setdefault(row["problem_id"], []).append(row["tokens"])
    return [sum(v) / len(v) for _, v in sorted(by_problem.items())]


def test_compare_two_runs(tmp_path, data_dir, smollm2):
    base = make_eval(tmp_path / "long", data_dir, smollm2, student(set(range(6)), 60), benchmarks="gsm8k,math500")
    pruned = make_eval(tmp_path / "short", data_dir, smollm2, student(set(range(8)) - {5}, 20))
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["compare", str(base), str(pruned), "--out", str(report)])
    assert result.exit_code == 0, result.output

    comparison = json.loads((report / "comparison.json").read_text())
    assert comparison["baseline"] == "long"
    assert comparison["skipped_benchmarks"] == {"math500": ["long"]}
    rows = comparison["benchmarks"]["gsm8k"]["rows"]
    assert [r["label"] for r in rows] == ["long", "short"]
    assert rows[0]["accuracy"]["mean"] == pytest.approx(6 / 8) and rows[1]["accuracy"]["mean"] == pytest.approx(7 / 8)
    assert rows[1]["accuracy_delta"] == pytest.approx(1 / 8)
    # Problem 5: only the baseline; problems 6 and 7: only the pruned run.
    mcnemar = rows[1]["mcnemar"]
    assert (mcnemar["only_baseline"], mcnemar["only_this"]) == (1, 2)
    assert mcnemar["pvalue"] == pytest.approx(binomtest(1, 3, 0.5).pvalue)
    long_tokens, short_tokens = per_problem_tokens(base), per_problem_tokens(pruned)
    assert rows[1]["token_reduction"] == pytest.approx(1 - sum(short_tokens) / sum(long_tokens))
    assert rows[1]["token_reduction"] > 0.4
    assert rows[1]["wilcoxon_tokens"]["pvalue"] == pytest.approx(wilcoxon(long_tokens, short_tokens).pvalue)
    assert rows[1]["wilcoxon_tokens"]["pvalue"] == pytest.approx(2 / 2**8)  # all 8 shorter: exact

    markdown = (report / "report.md").read_text()
    assert "| short | 8 × 2 | 87.5% ± 0.0% |" in markdown and "+12.5 pp" in markdown
    assert "1/2, p=1.000" in markdown and "p=0.008" in markdown
    assert markdown in result.output
    html = (report / "report.html").read_text()
    assert html.count("<tr") == 6 and "<td>short</td>" in html and "data:image/png;base64," in html  # 2 tables
    png = (report / "accuracy_vs_tokens.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(str(report / "accuracy_vs_tokens.png")).shape
    assert width > 300 and height > 300


def test_different_problem_sets_are_refused(tmp_path, data_dir, smollm2):
    full = make_eval(tmp_path / "full", data_dir, smollm2, student({0}, 5), seeds=1)
    part = make_eval(tmp_path / "part", data_dir, smollm2, student({0}, 5), seeds=1, limit=6)
    result = CliRunner().invoke(app, ["compare", str(full), str(part), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "gsm8k: full and part are on different problems: 2 only in full (gsm8k_0006, gsm8k_0007)" in result.output
    assert not (tmp_path / "r").exists()


def test_same_ids_with_other_questions_are_refused(tmp_path, data_dir, smollm2):
    first = make_eval(tmp_path / "a", data_dir, smollm2, student({0}, 5), seeds=1, limit=2)
    lines = (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"question": "Problem 1: what is 11, really?", "answer": "#### 11"})
    (data_dir / "gsm8k" / "test.jsonl").write_text("\n".join(lines) + "\n")
    second = make_eval(tmp_path / "b", data_dir, smollm2, student({0}, 5), seeds=1, limit=2)
    result = CliRunner().invoke(app, ["compare", str(first), str(second), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "asked different questions under the same ids (1: gsm8k_0001)" in result.output


def test_not_eval_folders(tmp_path, data_dir, smollm2):
    run = make_eval(tmp_path / "a", data_dir, smollm2, student({0}, 5), seeds=1, limit=1)
    result = CliRunner().invoke(app, ["compare", str(run), str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "is not an eval folder" in result.output
    result = CliRunner().invoke(app, ["compare", str(run), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "at least two" in result.output


def seeded_student(right_seeds: list[int], words: int):
    """Problem i is solved on its seeds below right_seeds[i] (else answered 0); reasoning `words` + i words long."""

    def reply(request):
        index = int(request["messages"][-1]["content"].split(":")[0].split()[1])
        answer = GOLDS[index] if request["seed"] < right_seeds[index] else "0"
        padding = " ".join(["step"] * (words + index))
        return Text(f"{padding}\n</think>\n\n\\boxed{{{answer}}}")

    return reply


def test_compare_k_samples_side_by_side_with_paired_tests(tmp_path, data_dir, smollm2):
    import itertools

    from drp.evals.stats import bootstrap_ci

    base = make_eval(tmp_path / "base", data_dir, smollm2, seeded_student([4, 4, 2, 1, 0, 0, 3, 4], 60), seeds=4)
    other = make_eval(tmp_path / "other", data_dir, smollm2, seeded_student([2, 2, 2, 2, 1, 0, 2, 1], 20), seeds=2)
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["compare", str(base), str(other), "--out", str(report)])
    assert result.exit_code == 0, result.output
    first, second = json.loads((report / "comparison.json").read_text())["benchmarks"]["gsm8k"]["rows"]

    base_accuracy = [1, 1, 0.5, 0.25, 0, 0, 0.75, 1]
    other_accuracy = [1, 1, 1, 1, 0.5, 0, 1, 0.5]
    assert first["avg@k"]["value"] == pytest.approx(sum(base_accuracy) / 8)
    assert second["avg@k"]["value"] == pytest.approx(sum(other_accuracy) / 8)
    # Side by side at the k both runs have (2): pass@2 of the 4-sample run by the unbiased estimator.
    assert first["pass@k"]["k"] == second["pass@k"]["k"] == 2
    assert first["pass@k"]["value"] == pytest.approx((1 + 1 + 5 / 6 + 0.5 + 0 + 0 + 1 + 1) / 8)
    assert second["pass@k"]["value"] == pytest.approx(7 / 8)  # n = k = 2: any right sample
    # maj@2 over the first two samples: a right and a wrong answer tie at 1/2.
    assert first["maj@k"]["value"] == pytest.approx(5.5 / 8) and second["maj@k"]["value"] == pytest.approx(6 / 8)

    diffs = [b - a for a, b in zip(base_accuracy, other_accuracy)]
    paired = second["accuracy_paired"]
    assert paired["mean_difference"] == pytest.approx(sum(diffs) / 8)
    assert paired["ci95"] == pytest.approx(list(bootstrap_ci(diffs)))
    flips = list(itertools.product((1, -1), repeat=8))
    as_extreme = sum(abs(sum(s * d for s, d in zip(f, diffs))) >= abs(sum(diffs)) - 1e-12 for f in flips)
    assert paired["exact"] and paired["sign_flip_pvalue"] == pytest.approx(as_extreme / len(flips))
    # Every problem thinks shorter in the other run: the exact two-sided signed-rank p of 8 pairs.
    assert second["wilcoxon_thinking"]["pvalue"] == pytest.approx(2 / 2**8)
    assert second["thinking_tokens"]["mean"] < first["thinking_tokens"]["mean"]
    assert second["endings"]["no_think_close"]["rate"] == 0.0 and second["endings"]["stopped"]["rate"] == 1.0

    markdown = (report / "report.md").read_text()
    assert "| avg@k | pass@k | maj@k |" in markdown and "| thinking mean / median / p90 |" in markdown
    assert f"p={paired['sign_flip_pvalue']:.3f}" in markdown and "@2 75.0% ±" in markdown
    assert "accuracy vs thinking tokens" in markdown


def test_a_run_from_before_the_token_split_compares_on_whole_responses(tmp_path, data_dir, smollm2):
    old = make_eval(tmp_path / "old", data_dir, smollm2, student({0, 1}, 30), seeds=1, limit=4)
    new = make_eval(tmp_path / "new", data_dir, smollm2, student({0, 1, 2}, 10), seeds=1, limit=4)
    rows = [json.loads(line) for line in open(old / "samples.jsonl")]
    with open(old / "samples.jsonl", "w") as handle:
        for row in rows:
            handle.write(
                json.dumps(
                    {k: v for k, v in row.items() if k not in ("thinking_tokens", "answer_tokens", "think_closed")}
                )
                + "\n"
            )
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["compare", str(old), str(new), "--out", str(report)])
    assert result.exit_code == 0, result.output
    first, second = json.loads((report / "comparison.json").read_text())["benchmarks"]["gsm8k"]["rows"]
    assert first["thinking_tokens"] is None and second["thinking_tokens"]["mean"] > 0
    assert second["wilcoxon_thinking"] is None and second["wilcoxon_tokens"]["n_nonzero"] == 4
    assert first["token_split"]["n"] == 0 and first["avg@k"]["value"] == 0.5
    assert "| – / – / – |" in result.output  # the old run has no thinking figures, shown as such
    assert (report / "accuracy_vs_tokens.png").read_bytes().startswith(b"\x89PNG")
