"""One row per input line, always: ids that collide with fallback ids, with renamed duplicates or with ids on
bad lines never lose a record, and each row keeps the record's own id beside its unique key."""

from __future__ import annotations

import json
import os

import pytest
from helpers import drp, drp_process, example_records, one_line_error, pruned_of, traces_of

from drp.input_traces import load
from drp.paths import run_dir


def _collide_file(path):
    """Every way two lines could be given the same row, packed in one file (with a BOM and blank lines)."""
    good = example_records()[0]  # a trace the rules policy accepts
    body = {"question": good["question"], "response": good["response"], "gold_answer": good["gold_answer"]}
    lines = [
        ("A", json.dumps({"id": "A", **body})),  # 1 (after a BOM)
        (None, '{"id": "B", "question": '),  # 2 cut short: its fallback key ...
        ("X", json.dumps({"id": "X", "question": "q"})),  # 3 malformed, with X's id
        ("D", json.dumps({"id": "D", **body})),  # 4
        ("line-000002", json.dumps({"id": "line-000002", **body})),  # 5 ... is this real id
        ("X", json.dumps({"id": "X", **body})),  # 6 the real X
        ("D", json.dumps({"id": "D", **body})),  # 7 a duplicate: D#line7 ...
        ("D#line7", json.dumps({"id": "D#line7", **body})),  # 8 ... is a real id
        ("42", json.dumps({"id": 42, **body})),  # 9 a number
        ("42", json.dumps({"id": "42", **body})),  # 10 the same id as text
        ("spaced", json.dumps({"id": "  spaced  ", **body})),  # 11 whitespace around
        ("L" * 5000, json.dumps({"id": "L" * 5000, **body})),  # 12 very long
        (None, json.dumps({"id": True, **body})),  # 13 not an id
        (None, "[1, 2]"),  # 14 not an object
        (None, ""),  # 15 blank: not a record
        (None, b'{"id": "bin\xff", "question": "q"}'),  # 16 not UTF-8
        (None, json.dumps(body)),  # 17 no id: line-000017 ...
        ("line-000017", json.dumps({"id": "line-000017", **body})),  # 18 ... is a real id
        (None, json.dumps({"id": "", **body})),  # 19 an empty id
        ("D#line7~2", json.dumps({"id": "D#line7~2", **body})),  # 20 the next fallback is taken too
        ("D", json.dumps({"id": "D", "response": "r"})),  # 21 bad line with a repeated id
    ]
    data = b"\xef\xbb\xbf"
    for _, text in lines:
        data += (text if isinstance(text, bytes) else text.encode()) + b"\n"
    path.write_bytes(data)
    return path, lines


def test_every_line_gets_one_row_and_no_record_hides_another(tmp_path):
    path, lines = _collide_file(tmp_path / "collide.jsonl")
    records = [line for line in range(1, len(lines) + 1) if lines[line - 1][1] != ""]
    loaded = list(load(str(path)))
    assert [item.line for item in loaded] == records
    keys = [item.id for item in loaded]
    assert len(set(keys)) == len(keys)

    result = drp("run", path, "--policy", "rules", "--run-id", "collide", "--quiet")
    assert result.exit_code == 1, result.output  # some lines failed, and the run says so
    rows = traces_of("collide")
    by_line = {row["line"]: row for row in rows.values()}
    assert sorted(by_line) == records and len(rows) == len(records)

    # Usable records with an id of their own keep it as their key, whatever other lines hold.
    usable = {
        1: "A",
        4: "D",
        5: "line-000002",
        6: "X",
        8: "D#line7",
        9: "42",
        11: "spaced",
        12: "L" * 5000,
        18: "line-000017",
        20: "D#line7~2",
    }
    for line, own in usable.items():
        assert by_line[line]["id"] == own and by_line[line]["source_id"] == own
        assert by_line[line]["status"] in ("accepted", "rejected"), by_line[line]
    # Usable records without an id get a key no record has.
    for line in (17, 19):
        assert by_line[line]["status"] in ("accepted", "rejected") and by_line[line]["source_id"] is None
    assert by_line[17]["id"] == "line-000017~2"
    # Every other line fails with its reason, under a key that takes nobody's id, its own id kept.
    expected = {
        2: "invalid_json",
        3: "missing_field",
        7: "duplicate_id",
        10: "duplicate_id",
        13: "invalid_id",
        14: "invalid_record",
        16: "invalid_utf8",
        21: "missing_field",
    }
    for line, reason in expected.items():
        assert by_line[line]["status"] == "failed" and by_line[line]["reason"].startswith(reason), by_line[line]
    assert by_line[3]["source_id"] == "X" and by_line[3]["id"] == "X#line3"
    assert by_line[7]["source_id"] == "D" and by_line[7]["id"] == "D#line7~3"
    assert by_line[10]["source_id"] == "42" and "first seen on line 9" in by_line[10]["reason"]
    assert by_line[2]["id"] == "line-000002~2" and by_line[21]["id"] == "D#line21"
    assert "line 4" in by_line[7]["reason"]

    # The run's outputs and readers see each row once; a resume adds nothing.
    accepted = [row["id"] for row in sorted(rows.values(), key=lambda r: r["line"]) if row["status"] == "accepted"]
    assert [record["id"] for record in pruned_of("collide")] == accepted
    listed = drp("logs", "list", "collide", "--ids").output.splitlines()
    assert sorted(listed) == sorted(rows)
    assert drp("run", path, "--run-id", "collide", "--resume", "--quiet").exit_code == 1
    assert len(traces_of("collide")) == len(records)
    export = drp("export", "collide", "--out", tmp_path / "sft")
    assert export.exit_code == 0, export.output
    exported = [json.loads(line)["id"] for line in (tmp_path / "sft" / "train.jsonl").read_text().splitlines()]
    assert exported == accepted


def test_a_lone_surrogate_fails_its_own_line_only(tmp_path):
    """JSON `\\udXXX` escapes that pair with nothing are no text: wherever one sits (question, response, id, an
    extra field, a key, a list), its line alone ends as failed; a real escaped pair (an emoji) is text."""
    good = example_records()[0]
    body = {"question": good["question"], "response": good["response"], "gold_answer": good["gold_answer"]}
    hostile = {
        "in-question": {"id": "q", **body, "question": "Maya \udc80 has"},
        "in-response": {"id": "r", **body, "response": body["response"] + "\ud800"},
        "in-gold": {"id": "g", **body, "gold_answer": "\udfff"},
        "in-extra": {"id": "e", **body, "meta": {"tags": ["ok", "\udbff"]}},
        "in-a-key": {"id": "k", **body, "\udc80": 1},
        "in-the-id": {"id": "bad\ud83d", **body},  # half an emoji pair
    }
    lines = [json.dumps({"id": "first", **body})]
    lines += [json.dumps(record) for record in hostile.values()]  # json escapes each surrogate as \udXXX
    lines += [
        json.dumps({"id": "emoji", **body, "question": body["question"] + " \U0001f600"}),
        json.dumps({"id": "last", **body}),
    ]
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert "\\udc80" in path.read_text()

    result = drp("run", path, "--policy", "rules", "--run-id", "surrogates", "--quiet")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    rows = traces_of("surrogates")
    assert len(rows) == len(lines)
    by_line = {row["line"]: row for row in rows.values()}
    for line in range(2, 2 + len(hostile)):
        assert by_line[line]["status"] == "failed" and by_line[line]["reason"].startswith("invalid_text: ")
        assert "lone surrogate" in by_line[line]["reason"]
    assert by_line[len(hostile) + 1]["id"] == "line-000007"  # the id itself was no text: a key of its line
    assert {rows["first"]["status"], rows["emoji"]["status"], rows["last"]["status"]} == {"accepted"}
    # Everything after the ingest reads and prints it.
    for command in (("logs", "list", "surrogates"), ("stats", "surrogates"), ("report", "surrogates")):
        shown = drp(*command)
        assert shown.exit_code == 0 and "Traceback" not in shown.output, (command, shown.output)
    assert len(pruned_of("surrogates")) == 3


def test_stored_text_never_holds_a_lone_surrogate(tmp_path):
    """What a teacher replies is stored whatever it holds: a lone surrogate becomes U+FFFD, never an error."""
    from drp.store import _cell, dumps

    assert _cell("a\udc80b") == "a\ufffdb" and dumps({"x": "\ud800"}) == '{"x": "\ufffd"}'
    assert _cell("plain") == "plain" and _cell("emoji \U0001f600") == "emoji \U0001f600"


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling-link"])
def test_a_traces_path_that_is_no_regular_file_is_an_error(kind, tmp_path, monkeypatch):
    """A FIFO or device named as the traces is refused for what it is, never looked up as a hub dataset and
    never read (a FIFO would block, a device never end)."""
    monkeypatch.chdir(tmp_path)
    name = "traces"  # no suffix, no slash: a name the hub could also have
    if kind == "fifo":
        os.mkfifo(name)
    elif kind == "device":
        os.symlink("/dev/zero", name)
    else:
        os.symlink(tmp_path / "gone.jsonl", name)
    result = drp_process("run", name, "--policy", "rules", "--run-id", "f", "--quiet", timeout=60)
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert {"fifo": "FIFO", "device": "device", "dangling-link": "link to nothing"}[kind] in result.stderr
    assert "dataset" not in result.stderr and not run_dir("f").exists()
