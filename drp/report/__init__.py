"""`drp report`: one self-contained HTML file showing what a pruning run did, trace by trace.

data.py reads a run (through drp.store, read-only), summary.py computes the run-level numbers, writer.py
streams the page (assets/ holds its template, CSS and JS). The page embeds the data as JSON and builds every trace's
detail view in the browser only when it is opened, so large runs stay light.
"""

from drp.report.writer import write_report

__all__ = ["write_report"]
