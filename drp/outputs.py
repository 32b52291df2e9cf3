"""The one check every writing command makes before it writes: an output never lands inside a drp run's
folder, and never replaces a folder or file that another drp command made.

A run folder holds only what `drp run` writes (its database, config, results): anything else writing there
could make it unresumable, so every other command's output is refused anywhere inside one — except a
report page (`drp report`'s default place is its run's folder), which may add or replace only a page.
Other commands' folders are known by the file each writes into them: an output may extend its own kind
(an eval folder is resumed, an export is replaced), never another's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from drp.errors import UserError

Writer = Literal["run", "eval", "generate", "export", "report", "compare", "distill", "serve-log"]

# The file that marks each command's output folder (kept in step with the writers that make them).
MARKERS: dict[str, str] = {
    "export": "drp_export.json",  # drp.export.writer.MANIFEST
    "distill": "drp_distill.json",  # drp.contamination.DISTILL_SUMMARY
    "compare": "comparison.json",  # drp.evals.report.write_report
    "eval": "samples.jsonl",  # drp.evals.evaluation.SAMPLES
}
# The files each command writes into its folder (and reads back); None: every file already there but logs (a
# model folder: its files have no fixed names). A new file or a sub-folder of such a folder stays free.
OWNED_FILES: dict[str, frozenset[str] | None] = {
    "eval": frozenset({"samples.jsonl", "config.json", "metrics.json"}),
    "export": frozenset(
        {"drp_export.json", "train.jsonl", "validation.jsonl", "README.md", "train_questions.txt", "dataset_dict.json"}
    ),
    "compare": frozenset({"comparison.json", "report.md", "report.html", "accuracy_vs_tokens.png"}),
    "distill": None,
}
COMMANDS = {
    "run": "drp run",
    "eval": "drp eval",
    "export": "drp export",
    "distill": "drp distill",
    "compare": "drp compare",
}


class OutputRefused(UserError):
    """An output that would land in a run's folder or over another drp command's output."""


def owner_of(folder: Path) -> str | None:
    """Which drp command made `folder` (`run`, `export`, `eval`, …), or None for any other folder."""
    from drp.run_folders import is_run_folder

    try:
        if not folder.is_dir():
            return None
        if is_run_folder(folder):
            return "run"
        return next((kind for kind, marker in MARKERS.items() if (folder / marker).is_file()), None)
    except OSError:
        return None


def enclosing_run(path: Path) -> Path | None:
    """The drp run folder that `path` is, or lies inside (links followed), if any."""
    resolved = path.expanduser().resolve()
    for folder in (resolved, *resolved.parents):
        if owner_of(folder) == "run":
            return folder
    return None


def check_output(
    path: Path, writer: Writer, flag: str = "--out", allowed_in_run: Callable[[Path], bool] | None = None
) -> None:
    """Refuse (one-line OutputRefused) an output `path` of the command `writer` that lies inside a drp run's
    folder (unless `allowed_in_run(path)` says this file may go there), or that is a folder — or a file in a
    folder — another drp command made."""
    path = Path(path)
    run = enclosing_run(path)
    if run is not None and writer != "run" and not (allowed_in_run and allowed_in_run(path)):
        raise OutputRefused(
            f"{flag} {path} is inside the drp run folder {run}, among the run's own files: only "
            "`drp run` writes there (its database, config, results), and another command writing "
            f"there could break the run; choose another {flag}"
        )
    resolved = path.expanduser().resolve()
    owner = owner_of(resolved)
    if owner not in (None, writer, "run"):  # a run's folder: settled above
        raise OutputRefused(
            f"{flag} {path} is the output folder of `{COMMANDS[owner]}`: another command never "
            f"writes over it; choose another {flag}"
        )
    owner = owner_of(resolved.parent)
    if owner not in (None, writer, "run") and _owns(owner, resolved):
        raise OutputRefused(
            f"{flag} {path} is a file of `{COMMANDS[owner]}`'s output folder {resolved.parent}: "
            f"another command never writes over it; choose another {flag}"
        )


def _owns(owner: str, path: Path) -> bool:
    files = OWNED_FILES[owner]
    if files is None:  # a model folder: any file already there may be part of the model; new paths are free
        return path.is_file() and path.suffix != ".log"
    return path.name in files
