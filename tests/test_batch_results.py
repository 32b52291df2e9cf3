"""drp.teacher.batch_results: every kind of result line a hostile Batch API endpoint can write, read without an
exception; a line that names its request is that request's answer or failure, any other is a warning."""

from __future__ import annotations

import json

from drp.teacher.batch_results import Results, file_cap, line_budget, read_results

A, B, C = ("drp-" + digit * 40 for digit in "abc")
BUDGETS = {A: line_budget({"max_tokens": 100}), B: line_budget({"max_tokens": 100}), C: line_budget(None)}


def completion(text="ok", **extra) -> dict:
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        **extra,
    }


def line(custom_id, status=200, body=None, **record) -> str:
    return json.dumps(
        {
            "custom_id": custom_id,
            "response": {"status_code": status, "body": completion() if body is None else body},
            **record,
        }
    )


def read(*lines: str) -> Results:
    results = Results()
    read_results("\n".join(lines), BUDGETS, results, "output file f")
    return results


def test_good_lines_and_error_lines_are_answers():
    results = read(
        line(A),
        line(B, 400, {"error": {"message": "bad request"}}),
        json.dumps({"custom_id": C, "response": None, "error": {"code": "batch_expired", "message": "late"}}),
    )
    assert results.answered[A][0] == 200 and results.answered[B][0] == 400 and results.answered[C][0] == 500
    assert not results.bad and not results.warnings


def test_a_line_that_names_its_request_but_cannot_be_used_is_that_requests_failure():
    cases = {
        "not JSON": line(A)[:60],
        "not an HTTP status": line(A, status="200"),
        "no body": json.dumps({"custom_id": A, "response": {"status_code": 200}}),
        "not a chat completion": line(A, body={"choices": "many"}),
        "assistant message": line(A, body={"choices": [{"message": "hello"}]}),
        "content is not text": line(A, body=completion(text={"a": 1})),
        "function_call": line(A, body={"choices": [{"message": {"role": "assistant", "function_call": "f"}}]}),
        "not an object": json.dumps({"custom_id": A, "response": [200]}),
        "neither a response nor an error": json.dumps({"custom_id": A}),
        "more than its request can need": line(A, body=completion("x" * 100_000)),
    }
    for said, text in cases.items():
        results = read(text)
        assert list(results.bad) == [A] and said in results.bad[A] and not results.answered, (said, results)
        assert len(results.bad[A]) < 1200  # the line's head only


def test_lines_that_name_no_request_of_the_job_are_ignored_with_a_warning():
    junk = [
        "[1, 2]",
        '"text"',
        "null",
        "42",
        '{"no": 1}',
        '{"custom_id": 7}',
        "\x00\xff{{",
        "[" * 100_000,
        line("drp-" + "0" * 40),
        line("someone-else"),
    ]
    results = read(*junk, "", "   ")
    assert not results.answered and not results.bad
    assert len(results.warnings) == len(junk) and all("ignored" in w for w in results.warnings)


def test_the_first_line_for_a_request_counts_over_both_files():
    results = read(line(A), line(A, 500, {"error": {"message": "later"}}))
    read_results(line(A, 400, {"error": {"message": "error file"}}), BUDGETS, results, "error file e")
    assert results.answered[A][0] == 200 and len(results.warnings) == 2


def test_usage_that_is_not_token_counts_is_dropped_and_the_reply_kept():
    for usage in (
        "lots",
        {"prompt_tokens": "1", "completion_tokens": 2},
        {"prompt_tokens": -5, "completion_tokens": 2},
        {"prompt_tokens": 10**12, "completion_tokens": 1},
        {"prompt_tokens": 3, "completion_tokens": 2, "prompt_tokens_details": "x"},
    ):
        status, body = read(line(A, body=completion(usage=usage))).answered[A]
        assert status == 200 and body["usage"] in (None, {"prompt_tokens": 3, "completion_tokens": 2})


def test_a_files_cap_is_what_its_requests_can_need():
    assert line_budget({"max_tokens": 1000}) < line_budget({"max_completion_tokens": 2000}) < line_budget(None)
    assert line_budget({"max_tokens": "lots"}) == line_budget(None) == line_budget({"max_tokens": -1})
    assert file_cap({A: 100, B: 200}) - file_cap({}) == 300
