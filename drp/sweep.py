"""A small policy sweep: `drp run … --set KEY=V1,V2,…` runs one child run per value (several swept keys: one per
combination), one after another, each reusing the teacher replies of the children before it (and of any
`--reuse` run), then prints them side by side (drp/run_compare.py).

A `--set` value is swept when it reads as plain text with commas in it (`max_retries=0,1,2`,
`verify.judge=false,true`); a YAML list or mapping (`taxonomy=[a, b]`) is one value, as ever. Each child is an
ordinary run, named `RUN_ID.KEY-VALUE` (resumable, inspectable, exportable on its own)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import yaml

from drp.errors import UserError


def split_sweeps(items: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The `--set` items that set one value, and the swept ones: key → its values (as YAML text)."""
    plain, swept = [], {}
    for item in items:
        key, equals, value = item.partition("=")
        if equals and key.strip() and _is_sweep(value):
            swept[key.strip()] = [part.strip() for part in value.split(",")]
        else:
            plain.append(item)
    return plain, swept


def _is_sweep(value: str) -> bool:
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, str) and "," in loaded and not value.lstrip().startswith(("'", '"'))


def children(run_id: str, swept: dict[str, list[str]]) -> list[tuple[str, dict[str, object]]]:
    """(child run id, its overrides) for every combination of the swept values, in the order given."""
    from drp.policy import parse_overrides

    found = []
    keys = list(swept)
    for values in itertools.product(*(swept[key] for key in keys)):
        name = ".".join(f"{key}-{value}" for key, value in zip(keys, values))
        child = f"{run_id}.{re.sub(r'[^A-Za-z0-9._-]', '_', name)}"[:128]
        found.append((child, parse_overrides([f"{key}={value}" for key, value in zip(keys, values)])))
    return found


def run_sweep(config, place, swept: dict[str, list[str]], progress: bool = True):
    """Run every child (a drp.run_config.RunConfig each, beside `place`); returns (their summaries, the
    side-by-side table)."""
    from drp.run_compare import compare, table
    from drp.runner import run
    from drp.store import open_run

    if config.execution.resume:
        raise UserError("a sweep (--set KEY=V1,V2) starts new runs: resume each child run by its own id instead")
    planned = children(place.run_id, swept)
    summaries, done = [], []
    for child, overrides in planned:
        child_place = place.sibling(child)
        child_config = replace(
            config,
            policy=replace(config.policy, overrides={**config.policy.overrides, **overrides}),
            teacher=replace(config.teacher, reuse=(*config.teacher.reuse, *(str(f.resolve()) for f in done))),
        )
        summaries.append(run(child_config, child_place, progress=progress))
        done.append(child_place.folder)
    stores = [open_run(folder) for folder in done]
    try:
        return summaries, table(compare(stores))
    finally:
        for store in stores:
            store.close()
