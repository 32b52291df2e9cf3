"""One sampling job, what `drp eval` and `drp generate` both are: the tasks whose samples are not yet in the
samples file go to the endpoint, concurrently, and each completion is appended there as a record the moment
it arrives (the resume point: a rerun draws only what is missing or failed).

The commands keep what is theirs: which problems, which requests, what a record holds, what is made of the
records at the end (eval's metrics, generate's trace file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from drp.endpoint import EndpointSettings
from drp.redaction import redact_url
from drp.sampling.client import Completion, Decoding, Endpoint
from drp.sampling.pool import Task, run_tasks
from drp.sampling.samples_file import SampleWriter, latest_by_key, read_records


@dataclass(kw_only=True)
class SamplingSettings:
    """What `eval` and `generate` share: the endpoint, the problems' source, decoding, how requests run."""

    endpoint: EndpointSettings
    out: Path
    limit: int | None = None
    data_dir: Path | None = None
    source: str = "auto"
    prompt_template: str | None = None
    tokenizer: str | None = None
    decoding: Decoding = field(default_factory=lambda: Decoding(0.6, 0.95, 16384))
    concurrency: int = 8
    max_consecutive_errors: int = 20
    progress: bool = True
    overwrite: bool = False

    def open_endpoint(self, echo: Callable[[str], None]) -> Endpoint:
        """The endpoint, probed (EndpointDown before anything is written or deleted); warns when the server
        does not list the model."""
        endpoint = Endpoint(self.endpoint)
        served = endpoint.probe()
        if served and endpoint.model not in served:
            echo(f"warning: {redact_url(endpoint.url)} lists {', '.join(served[:5])} but not {endpoint.model}")
        return endpoint


def tokenizer_for(model: str, explicit: str | None) -> str:
    """The student's own tokenizer: --tokenizer, else the model folder when it has one, else the default."""
    from drp.models import resolve
    from drp.paths import default_tokenizer

    if explicit:
        return resolve(explicit)
    folder = Path(resolve(model))
    if folder.is_dir() and any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        return str(folder)
    return default_tokenizer()


@dataclass
class JobOutcome:
    todo: int  # samples this run set out to draw
    done: int
    failed: int
    aborted: str | None  # why it stopped early (too many errors in a row)
    interrupted: bool


@dataclass
class SamplingJob:
    """A command's samples file, a record's place in it, and how a completion becomes a record."""

    label: str  # the progress bar's
    samples: Path
    key: Callable[[dict], tuple]  # a record's place; a task's key is the place of the record it makes
    record: Callable[[Task, Completion], dict]
    tally: bool = False  # correct and failed counts beside the progress bar

    def latest(self, records: Iterable[dict] | None = None) -> dict[tuple, dict]:
        """Each place's latest record (the samples file's, unless given), a success never replaced by an error."""
        return latest_by_key(read_records(self.samples) if records is None else records, self.key)

    def finished(self, records: Iterable[dict] | None = None) -> set[tuple]:
        """The places that hold a success: a resumed job skips them (and redraws the failed ones)."""
        return {k for k, r in self.latest(records).items() if not r.get("error")}

    def run(
        self,
        planned: Iterable[Task],
        finished: set[tuple],
        endpoint: Endpoint,
        settings: SamplingSettings,
        echo: Callable[[str], None],
        about: str,
    ) -> JobOutcome:
        """Draw the planned tasks that are not finished, appending each record as it comes."""
        from tqdm import tqdm

        tasks = [task for task in planned if task.key not in finished]
        echo(f"{len(tasks)} samples to draw ({len(finished)} already done) {about}")
        progress = tqdm(
            total=len(tasks),
            desc=self.label,
            unit="sample",
            disable=not settings.progress or not tasks,
            dynamic_ncols=True,
        )
        tally = {"correct": 0, "errors": 0}

        with SampleWriter(self.samples) as writer:

            def on_result(task: Task, completion: Completion) -> None:
                record = self.record(task, completion)
                writer.write(record)
                progress.update(1)
                if self.tally:
                    tally["correct"] += bool(record.get("correct"))
                    tally["errors"] += bool(record.get("error"))
                    progress.set_postfix(correct=tally["correct"], errors=tally["errors"], refresh=False)

            outcome = run_tasks(
                tasks, endpoint, settings.decoding, settings.concurrency, on_result, settings.max_consecutive_errors
            )
        progress.close()
        return JobOutcome(len(tasks), outcome.done, outcome.failed, outcome.aborted, outcome.interrupted)
