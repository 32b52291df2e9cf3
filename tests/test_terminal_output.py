"""Text from a run is data on the terminal: ESC sequences, other C0/C1 controls and bidirectional overrides in
ids, questions, answers and replies print as visible escapes in `logs`, `diff`, `stats` and error lines, and
rich markup in them (`[bold]`) prints as it is."""

from __future__ import annotations

import json

import pytest
from helpers import drp, example_records, one_line_error, write_jsonl

RAW = ["\x1b", "\x9b", "\x07", "\x08", "\r", "\x00", "\x7f", "\u202e", "\u2066"]
EVIL_ID = "evil\x1b]0;pwned\x07\x1b[2J[bold]id[/bold]\u202e"


@pytest.fixture
def hostile_run(tmp_path):
    records = example_records()
    first, second = records[0], records[1]
    hostile = {
        **first,
        "id": EVIL_ID,
        "response": first["response"].replace("Maya", "Maya\x1b[31m\x9b2J\x08\x08\r[red]X[/red]", 1),
    }
    plain = {**second, "question": second["question"] + " \x1b[8m hidden \u202e"}
    write_jsonl(tmp_path / "hostile.jsonl", [hostile, plain])
    result = drp("run", tmp_path / "hostile.jsonl", "--policy", "rules", "--run-id", "hostile", "--quiet")
    assert result.exit_code in (0, 1), result.output
    return plain["id"]


def _clean(output: str) -> None:
    for char in RAW:
        assert char not in output, (repr(char), output)


def test_logs_diff_and_stats_escape_control_characters(hostile_run):
    outputs = {
        "logs list": drp("logs", "list", "hostile"),
        "logs list --ids": drp("logs", "list", "hostile", "--ids"),
        "logs show": drp("logs", "show", "hostile", EVIL_ID),
        "logs show plain": drp("logs", "show", "hostile", hostile_run),
        "diff": drp("diff", "hostile", EVIL_ID),
        "stats": drp("stats", "hostile"),
    }
    for name, result in outputs.items():
        assert result.exit_code == 0, (name, result.output)
        _clean(result.output)
    assert "\\x1b]0;pwned\\x07" in outputs["logs list --ids"].output
    assert len(outputs["logs list --ids"].output.splitlines()) == 2  # one line per trace, whatever the id holds
    table = "".join(outputs["diff"].output.replace("│", "").split())  # its cells fold long text over lines
    assert "[bold]id[/bold]" in table and "\\x1b[31m" in table
    assert "[red]X[/red]" in table  # markup in the text is text


def test_json_output_stays_json_and_escapes_them_too(hostile_run):
    listed = drp("logs", "list", "hostile", "--json")
    shown = drp("logs", "show", "hostile", EVIL_ID, "--json")
    for result in (listed, shown):
        assert result.exit_code == 0
        _clean(result.output)
    assert EVIL_ID in {json.loads(line)["id"] for line in listed.output.splitlines()}
    assert json.loads(shown.output)["trace"]["id"] == EVIL_ID  # the escapes are JSON's own


def test_error_lines_escape_them(tmp_path):
    result = drp("run", tmp_path / "gone\x1b[2J\u202e.jsonl", "--policy", "rules", "--run-id", "x")
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    _clean(result.output)
    assert "gone\\x1b[2J\\u202e.jsonl" in result.output


def test_eval_metrics_table_prints_benchmark_names_as_text(capsys):
    from drp.commands.evaluate import print_metrics

    name = "[bold red]fake[/bold red]\x1b[2J"
    metrics = {
        name: {
            "accuracy": {"mean": 0.5, "std": 0.0, "ci95": [0.4, 0.6]},
            "tokens": {"mean": 10, "std": 1},
            "token_check": {"mismatch_rate": None},
            "n_problems": 2,
            "seeds": [0],
            "length_capped": {"count": 0},
            "max_tokens": 100,
            "no_answer": [],
            "errors": [],
            "contamination": {"checked": True, "trained_on": 1},
        }
    }
    print_metrics(metrics)
    out = capsys.readouterr().out
    _clean(out)
    assert "WARNING: [bold red]fake[/bold red]\\x1b[2J: the student" in out
    assert "red]fake[/bold" in out.split("WARNING")[0]  # in the table too (folded over lines), as text
