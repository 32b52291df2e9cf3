"""drp.jsonl: the one JSONL reader (numbered lines, blank ones skipped, bad ones reported with their error) and the
one atomic writer (a hidden sibling file renamed over the target)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from drp.jsonl import JsonlError, atomic_write, read_jsonl, read_lines, write_jsonl


def test_lines_are_numbered_as_an_editor_numbers_them(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"n": 1}\n'  # 1: a byte-order mark is not data
        b"\n"  # 2: blank
        b"   \t\r\n"  # 3: blank too
        b'{"n": 4}\r\n'  # 4: Windows line end
        b'{"n": \n'  # 5: cut short
        b'{"s": "caf\xff"}\n'  # 6: not UTF-8
        + ('{"s": "one\u2028line\u0085still"}\n').encode()  # 7: separators inside a string split nothing
        + b"[" * 100_000
        + b"\n"  # 8: nested deeper than the parser goes
        + b"[1, 2]"  # 9: no newline at the end
    )
    lines = list(read_lines(path))
    assert [line.number for line in lines] == [1, 4, 5, 6, 7, 8, 9]
    by_number = {line.number: line for line in lines}
    assert by_number[1].record == {"n": 1} and by_number[4].record == {"n": 4} and by_number[9].record == [1, 2]
    assert by_number[7].record == {"s": "one\u2028line\u0085still"}
    assert isinstance(by_number[5].error, json.JSONDecodeError) and by_number[5].record is None
    assert isinstance(by_number[6].error, UnicodeDecodeError) and by_number[6].record is None
    assert isinstance(by_number[8].error, json.JSONDecodeError)
    assert all(by_number[n].error is None for n in (1, 4, 7, 9))


def test_read_jsonl_names_the_first_bad_line(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n', encoding="utf-8")
    with pytest.raises(JsonlError, match=r"b\.jsonl:3: not valid JSON \(Expecting value, column 7\)"):
        read_jsonl(path)
    path.write_bytes(b'{"a": 1}\n{"a": "\xe9"}\n')
    with pytest.raises(JsonlError, match=r"b\.jsonl:2: not UTF-8 \(byte 8 of the line is 0xe9\)"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n\n["x"]\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, ["x"]]


def test_write_jsonl_round_trips_and_replaces(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("old\n", encoding="utf-8")
    records = [{"q": "π ≈ 3.14", "line": "a\u2028b"}, {"q": None}]
    assert write_jsonl(path, records) == path
    assert read_jsonl(path) == records
    assert "π ≈ 3.14" in path.read_text(encoding="utf-8")  # non-ASCII kept as is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]  # no partial file left


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("old", encoding="utf-8")
    (tmp_path / "d.json.partial").write_text("someone else's", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text(encoding="utf-8") == "old"
    assert (tmp_path / "d.json.partial").read_text(encoding="utf-8") == "someone else's"  # never taken for ours
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.json.partial"]


def test_permissions_follow_the_umask_unless_given(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "private") as handle:
            handle.write("x")
        with atomic_write(tmp_path / "shared", mode=0o644) as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o644
