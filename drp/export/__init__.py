"""Accepted traces of one or more runs → a chat SFT dataset for the student (`drp export`).

`sources` reads a run's accepted traces, `examples` turns one into a prompt–completion example,
`card` writes the dataset card, `writer` mixes runs and writes JSONL + a `datasets` folder.
"""

from drp.export.writer import ExportError, export_dataset
from drp.layout import DEFAULT_INSTRUCTION

__all__ = ["DEFAULT_INSTRUCTION", "ExportError", "export_dataset"]
