"""Every command reports a user error the same way: one line `error: …` and the shared exit status."""

from __future__ import annotations

import pytest
from helpers import EXAMPLES, drp

from drp.errors import EXIT_BAD_INPUT, UserError
from drp.sampling.client import EndpointDown


@pytest.mark.parametrize(
    "args, message",
    [
        (("models", "pull", "nope"), "unknown model 'nope'"),
        (("prompts", "show", "no-such-policy"), "unknown policy 'no-such-policy'"),
        (("prompts", "show", "rules", "judge"), "policy 'rules' has no agent 'judge'"),
        (("report", "ex", "--status", "done"), "unknown status done"),
        (("logs", "show", "ex", "no-such-trace"), "no trace 'no-such-trace' in this run"),
        (("stats", "no-such-run"), "no run database at"),
        (("run", EXAMPLES, "--policy", "rules", "--field", "question"), "--field wants OURS=THEIRS"),
        (
            ("eval", "--model-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", "x", "--benchmarks", ","),
            "--benchmarks is empty",
        ),
        (("compare", "a", "--out", "x"), "compare needs at least two eval folders"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(example_run, args, message):
    example_run("ex")
    result = drp(*args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1, result.output


def test_the_error_classes_share_one_base():
    from drp.distill.config import DistillError
    from drp.evals.compare import CompareError
    from drp.evals.evaluation import EvalError
    from drp.evals.problem_sets import BenchmarkError
    from drp.evals.templates import TemplateError
    from drp.export.sources import SourceError
    from drp.export.writer import ExportError
    from drp.generation import GenerateError
    from drp.policy import PolicyError
    from drp.runner import RunError
    from drp.serving import ServeError
    from drp.store import RunNotFound

    for error in (
        DistillError,
        BenchmarkError,
        CompareError,
        EvalError,
        GenerateError,
        TemplateError,
        SourceError,
        ExportError,
        PolicyError,
        RunError,
        ServeError,
        RunNotFound,
        EndpointDown,
    ):
        assert issubclass(error, UserError)
    assert EndpointDown.exit_code == 3 and UserError.exit_code == EXIT_BAD_INPUT
