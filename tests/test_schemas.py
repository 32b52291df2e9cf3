"""Agent reply schemas are built once per shape and shared between calls and traces: sharing must never mix up
what one trace's feedback says with another's."""

from __future__ import annotations

from drp.schemas import labels_schema, plan_schema, segmentation_schema
from drp.teacher.replies import parse_json_reply, response_format


def test_a_plan_schema_is_shared_only_by_traces_that_protect_the_same_steps_for_the_same_reasons():
    first = plan_schema(4, {2: "computes 12 = 3 × 4"})
    assert plan_schema(4, {2: "computes 12 = 3 × 4"}) is first  # built once
    other = plan_schema(4, {2: "computes 7 = 9 - 2"})
    assert other is not first
    # Each trace's feedback names its own protected step's computation.
    _, error = parse_json_reply('{"delete": [2], "compress": []}', first)
    assert "computes 12 = 3 × 4" in error and "9 - 2" not in error
    _, error = parse_json_reply('{"delete": [2], "compress": []}', other)
    assert "computes 7 = 9 - 2" in error and "3 × 4" not in error
    # Protection outside a window does not change the window's schema.
    assert plan_schema(4, {2: "x", 9: "y"}, first=3) is plan_schema(4, {}, first=3)


def test_shared_schemas_keep_their_bounds_and_their_json_schema():
    assert labels_schema(3, ["a", "b"]) is labels_schema(3, ("a", "b"))
    assert labels_schema(3, ["a", "b"]) is not labels_schema(3, ["a", "c"])
    parsed, error = parse_json_reply('{"skills": ["A", "b", "a"]}', labels_schema(3, ["a", "b"]))
    assert error is None and parsed.skills == ["a", "b", "a"]
    _, error = parse_json_reply('{"starts": [1, 9]}', segmentation_schema(1, 7))
    assert "unit 9 does not exist; the last unit is 7" in error
    schema = segmentation_schema(1, 7)
    sent = response_format("json_schema", schema)
    assert sent is response_format("json_schema", schema)  # written once per schema
    assert sent["json_schema"]["schema"] == schema.model_json_schema()
    assert sent["json_schema"]["schema"]["properties"]["starts"]["maxItems"] == 7
