"""Where one run lives: its runs folder, its id, and the paths drp derives from them (the run's folder, its
lock, the corner where it is built before it appears). A value handed down from the command line, so nothing
below the CLI reads `DRP_RUNS_DIR`: a run elsewhere (the `--estimate` sample's) is just another place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drp.paths import check_run_id

WORK_NAME = ".drp"  # the runs folder's own corner: locks and runs being built (never a run id)


@dataclass(frozen=True)
class RunPlace:
    root: Path  # the runs folder
    run_id: str

    @classmethod
    def under(cls, root: Path | str, run_id: str) -> RunPlace:
        """The place of run `run_id` in the runs folder `root` (InvalidRunId unless the id is a plain name)."""
        return cls(Path(root), check_run_id(run_id))

    @classmethod
    def of_folder(cls, folder: Path | str) -> RunPlace:
        """The place of an existing run folder (its parent is the runs folder); the name is not checked."""
        folder = Path(folder)
        return cls(folder.parent, folder.name)

    @property
    def folder(self) -> Path:
        return self.root / self.run_id

    @property
    def work(self) -> Path:
        return self.root / WORK_NAME

    @property
    def lock_path(self) -> Path:
        return self.work / f"{self.run_id}.lock"

    def sibling(self, run_id: str) -> RunPlace:
        """Another run in the same runs folder (a sweep's children)."""
        return RunPlace.under(self.root, run_id)
