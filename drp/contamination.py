"""Training-question fingerprints: which questions a student trained on, and which evaluated problems are among them.

A question's fingerprint is the SHA-256 of its normalised text (Unicode NFKC, lower case, runs of whitespace made
one space, trimmed), first 16 hex digits. `drp export` writes the fingerprints of every training question to a
sidecar file (and the dataset card); `drp distill` copies it next to the model; `drp eval` reads it back to
count how many evaluated problems the student has seen (`--train-questions` points at one explicitly).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from drp.jsonl import describe, read_lines

SIDECAR = "train_questions.txt"
DISTILL_SUMMARY = "drp_distill.json"  # marks a `drp distill` output folder
_HEADER = (
    "# drp training-question fingerprints: sha256 of the normalised question (NFKC, lower case, whitespace "
    "collapsed), first 16 hex digits; one per line"
)


class TrainQuestionsError(ValueError):
    """A --train-questions file drp cannot read."""


def normalise(question: str) -> str:
    text = unicodedata.normalize("NFKC", question or "").lower()
    return re.sub(r"\s+", " ", text).strip()


def fingerprint(question: str) -> str:
    return hashlib.sha256(normalise(question).encode("utf-8")).hexdigest()[:16]


def fingerprints(questions: Iterable[str]) -> list[str]:
    """Sorted, without repeats (several traces of one problem train on one question)."""
    return sorted({fingerprint(q) for q in questions if q and q.strip()})


def write_sidecar(folder: Path, hashes: Iterable[str]) -> Path:
    path = Path(folder) / SIDECAR
    path.write_text("\n".join([_HEADER, *hashes]) + "\n", encoding="utf-8")
    return path


def read_sidecar(path: Path) -> set[str]:
    return {
        line.strip()
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }


def load_train_questions(source: Path) -> set[str]:
    """Fingerprints from a sidecar file, a folder holding one (an export, a student), or a JSONL of questions."""
    source = Path(source)
    if source.is_dir():
        if (source / SIDECAR).is_file():
            return read_sidecar(source / SIDECAR)
        if (source / "train.jsonl").is_file():
            return _from_jsonl(source / "train.jsonl")
        raise TrainQuestionsError(
            f"{source} holds no {SIDECAR} (written by drp export and drp distill) and no train.jsonl"
        )
    if not source.is_file():
        raise TrainQuestionsError(f"training-questions file {source} does not exist")
    if source.suffix == ".jsonl":
        return _from_jsonl(source)
    return read_sidecar(source)


def _from_jsonl(path: Path) -> set[str]:
    questions = []
    for line in read_lines(path):
        number, record, error = line.number, line.record, line.error
        if isinstance(error, UnicodeDecodeError):
            raise TrainQuestionsError(f"{path}:{number}: {describe(error)}")
        if error is not None:
            raise TrainQuestionsError(f"{path}:{number}: not valid JSON ({error.msg})")
        question = record.get("question") or record.get("problem") if isinstance(record, dict) else None
        if not question:
            raise TrainQuestionsError(f"{path}:{number}: no question or problem field")
        questions.append(question)
    return set(fingerprints(questions))


def find_train_questions(model: str) -> Path | None:
    """The sidecar saved with a model folder: in it, or one level up (`--merge` puts the model in OUTPUT/merged)."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    if (folder / SIDECAR).is_file():
        return folder / SIDECAR
    parent = folder.parent
    if (parent / DISTILL_SUMMARY).is_file() and (parent / SIDECAR).is_file():
        return parent / SIDECAR
    return None
