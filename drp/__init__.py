"""drp: Distilled Reasoning Pruning toolkit."""

__version__ = "0.1.0"
