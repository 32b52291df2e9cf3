"""Scoring students: benchmark loaders, prompts, a resumable sampling client, grading, statistics, reports.

One small module per concern; `drp eval`, `drp generate` and `drp compare` are thin commands over them.
"""
