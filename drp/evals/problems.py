"""The vocabulary shared by the loaders, the sampler and the reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    benchmark: str
    id: str  # stable across runs and sources (local file or hub), so runs can be paired on it
    question: str
    gold: str | None
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def question_sha(self) -> str:
        """Short content hash: two runs claiming the same id must also have asked the same question."""
        return hashlib.sha256(self.question.strip().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Benchmark:
    name: str
    source: str  # where the problems came from, for the record (a file path or a hub id + split)
    problems: tuple[Problem, ...]
