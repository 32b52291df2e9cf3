"""sqlite-utils, imported without pandas: where pandas is installed, sqlite-utils imports it only to map pandas'
column types, a third of a second of every drp command's start for a DataFrame drp never writes."""

from __future__ import annotations

import sys


def _without_pandas():
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:  # too late, or nothing to save
        import sqlite_utils

        return sqlite_utils
    sys.modules["pandas"] = None  # its import fails inside sqlite-utils, as where pandas is not installed
    try:
        import sqlite_utils
    finally:
        del sys.modules["pandas"]  # and imports as usual afterwards
    return sqlite_utils


sqlite_utils = _without_pandas()
