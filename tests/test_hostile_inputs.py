"""Files from elsewhere, edited by hand or damaged, given to `drp export` (a pruned.jsonl) and `drp compare`
(an eval folder's samples.jsonl and config.json): every one of them ends as one line naming the file and what
is wrong with it, never a traceback, and nothing is written."""

from __future__ import annotations

import json

import pytest
from helpers import drp, one_line_error, pruned_of

BAD_RECORDS = {  # what a hostile pruned.jsonl line may be, or hold
    "array": [1, 2],
    "null": None,
    "string": "text",
    "no-id": {"question": "q", "thinking": "t"},
    "id-list": {"id": ["a"], "question": "q"},
    "id-true": {"id": True, "question": "q"},
    "no-question": {"id": "x", "thinking": "t"},
    "question-number": {"id": "x", "question": 5},
    "thinking-object": {"id": "x", "question": "q", "thinking": {"a": 1}},
    "answer-list": {"id": "x", "question": "q", "pruned_answer": ["4"]},
    "gold-object": {"id": "x", "question": "q", "gold_answer": {"v": 1}},
    "tokens-text": {"id": "x", "question": "q", "tokens": "many"},
    "tokens-negative": {"id": "x", "question": "q", "tokens": {"thinking_before": -3}},
    "tokens-float": {"id": "x", "question": "q", "tokens": {"thinking_after": 1.5}},
    "policy-list": {"id": "x", "question": "q", "policy": ["rules"]},
    "hashes-list": {"id": "x", "question": "q", "prompt_hashes": ["a"]},
    "hashes-nested": {"id": "x", "question": "q", "prompt_hashes": {"pruner": {"a": 1}}},
    "surrogate": {"id": "x", "question": "q \udc80"},
}


@pytest.fixture
def pruned(example_run):
    example_run("done")
    return pruned_of("done")


@pytest.mark.parametrize("bad", sorted(BAD_RECORDS))
def test_export_of_a_hostile_pruned_jsonl_is_one_line(pruned, tmp_path, bad):
    good = [json.dumps(record) for record in pruned]
    path = tmp_path / "run" / "pruned.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join([*good[:2], json.dumps(BAD_RECORDS[bad]), *good[2:]]) + "\n")
    result = drp("export", path, "--out", tmp_path / "ds")
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert f"{path} line 3" in result.output and not (tmp_path / "ds").exists()


def test_export_of_a_pruned_jsonl_that_is_not_utf8(pruned, tmp_path):
    path = tmp_path / "pruned.jsonl"
    path.write_bytes(json.dumps(pruned[0]).encode() + b"\n" + b'{"id": "\xff\xfe"}\n')
    result = drp("export", path, "--out", tmp_path / "ds")
    assert result.exit_code == 2 and one_line_error(result.output) and "UTF-8" in result.output, result.output


def test_export_reads_pruned_jsonl_lines_as_a_text_editor_numbers_them(pruned, tmp_path):
    path = tmp_path / "pruned.jsonl"
    # drp run writes non-ASCII as is: a line separator inside a question is text, not the end of a line
    first = {**pruned[0], "question": pruned[0]["question"] + "\u2028(see above)\u0085"}
    path.write_text(json.dumps(first, ensure_ascii=False) + "\n" + json.dumps(pruned[1]) + "\n", encoding="utf-8")
    assert drp("export", path, "--out", tmp_path / "ds").exit_code == 0
    path.write_text(json.dumps(first, ensure_ascii=False) + "\n\n" + '{"id": \n', encoding="utf-8")
    result = drp("export", path, "--out", tmp_path / "ds2")
    assert result.exit_code == 2 and f"{path} line 3 is not JSON" in result.output, result.output


def test_a_hand_made_pruned_jsonl_still_exports(pruned, tmp_path):
    path = tmp_path / "mine" / "pruned.jsonl"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "id": 7,
                "question": "What is 2 + 2?",
                "thinking": "2 + 2 = 4.",
                "answer_section": "\\boxed{4}",
                "gold_answer": 4,
            }
        )
        + "\n"
    )
    result = drp("export", path, "--out", tmp_path / "ds")
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- compare


def _sample(benchmark="gsm8k", seed=0, problem="1", correct=True, tokens=100):
    return {
        "benchmark": benchmark,
        "seed": seed,
        "problem_id": problem,
        "correct": correct,
        "tokens": tokens,
        "question_sha": f"sha-{problem}",
        "finish_reason": "stop",
        "extracted_answer": "4",
    }


def _eval_folder(path, records, config=None):
    path.mkdir(parents=True)
    (path / "samples.jsonl").write_bytes(
        b"".join(record if isinstance(record, bytes) else (json.dumps(record) + "\n").encode() for record in records)
    )
    (path / "config.json").write_text(
        json.dumps(config if config is not None else {"model": "m", "protocol": "default", "decoding": {}})
    )
    return path


GOOD = [_sample(problem=str(n), correct=n % 2 == 0, tokens=100 + n) for n in range(1, 7)]

BAD_SAMPLES = {
    "no-correct": {k: v for k, v in _sample().items() if k != "correct"},
    "no-tokens": {k: v for k, v in _sample().items() if k != "tokens"},
    "tokens-text": _sample(tokens="many"),
    "tokens-negative": _sample(tokens=-5),
    "tokens-nan": b'{"benchmark": "gsm8k", "seed": 0, "problem_id": "1", "correct": true, "tokens": NaN}\n',
    "tokens-infinite": b'{"benchmark": "gsm8k", "seed": 0, "problem_id": "1", "correct": true, "tokens": 1e400}\n',
    "benchmark-list": _sample(benchmark=["gsm8k"]),
    "benchmark-missing": {k: v for k, v in _sample().items() if k != "benchmark"},
    "seed-text": _sample(seed="0"),
    "problem-null": _sample(problem=None),
    "problem-object": _sample(problem={"id": 1}),
    "correct-text": _sample(correct="yes"),
    "finish-list": {**_sample(), "finish_reason": ["stop"]},
    "surrogate": _sample(problem="1\udc80"),
    "not-utf8": b'{"benchmark": "gsm8k\xff", "seed": 0}\n',
}


@pytest.mark.parametrize("bad", sorted(BAD_SAMPLES))
def test_compare_of_a_hostile_samples_file_is_one_line(tmp_path, bad):
    good = _eval_folder(tmp_path / "good", GOOD)
    hostile = _eval_folder(tmp_path / "hostile", [*GOOD, BAD_SAMPLES[bad]])
    for order in ((good, hostile), (hostile, good)):
        result = drp("compare", *order, "--out", tmp_path / "out")
        assert result.exit_code == 2 and one_line_error(result.output), (bad, result.output)
        assert "samples.jsonl" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "config", ["[1, 2]", "not json", '{"decoding": "greedy"}', '{"paper_caps": [1]}', '{"protocol": 3}']
)
def test_compare_of_a_hostile_config_is_one_line(tmp_path, config):
    good = _eval_folder(tmp_path / "good", GOOD)
    hostile = _eval_folder(tmp_path / "hostile", GOOD)
    (hostile / "config.json").write_text(config)
    result = drp("compare", good, hostile, "--out", tmp_path / "out")
    assert result.exit_code == 2 and one_line_error(result.output) and "config.json" in result.output, result.output


def test_compare_of_hand_made_folders_still_works(tmp_path):
    good = _eval_folder(tmp_path / "good", GOOD)
    other = _eval_folder(tmp_path / "other", [{**r, "tokens": r["tokens"] // 2} for r in GOOD])
    result = drp("compare", good, other, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
