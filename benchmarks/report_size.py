"""`drp report` at scale: generation time and file size for 1,000 and 10,000 traces, and how fast the page
first renders, filters and opens a trace in headless Chromium.

    python benchmarks/report_size.py [--sizes 1000,10000] [--workdir DIR] [--no-browser]

Each size is a run of the `rules` policy over the 1,000 real R1-Distill-Qwen-1.5B traces in ../shared/data/traces/,
repeated under new ids to reach it (10,000 take a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drp.jsonl import read_jsonl, write_jsonl
from drp.paths import shared_dir
from drp.report import write_report

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRACES = "data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"


def rules_run(runs: Path, size: int) -> Path:
    """The `rules` policy over `size` traces: the 1,000 shared ones, repeated past that under ids suffixed -c1,
    -c2, … (made once per workdir)."""
    folder = runs / f"rules-{size}"
    if (folder / "drp.db").exists():
        return folder
    shared = shared_dir()
    if shared is None:
        sys.exit("../shared is absent: this benchmark needs the real traces")
    real = read_jsonl(shared / TRACES)
    records = []
    for index in range(size):
        copy, position = divmod(index, len(real))
        records.append({**real[position], "id": real[position]["id"] + (f"-c{copy}" if copy else "")})
    source = write_jsonl(runs / f"traces-{size}.jsonl", records)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "drp.cli", "run", str(source), "--policy", "rules", "--run-id", folder.name],
        check=True,
        env={**os.environ, "DRP_RUNS_DIR": str(runs)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"rules run over {size} traces: {time.perf_counter() - started:.1f} s")
    return folder


def browser_figures(page, report: Path) -> dict:
    """Load the report and time, inside the page, what a reader does first."""
    started = time.perf_counter()
    page.goto(report.resolve().as_uri(), wait_until="commit")
    page.wait_for_selector('body[data-ready="1"]', timeout=120_000)
    to_ready = time.perf_counter() - started
    page.wait_for_load_state("load", timeout=120_000)
    timing = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        return {rendered: window.drpRendered, painted: window.drpPainted,
                dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
                heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null};
    }""")
    # Synchronous handlers, so performance.now() around each dispatch measures the whole update.
    timing["filter_ms"] = page.evaluate("""() => {
        const s = document.getElementById('f-status'); const t = performance.now();
        s.value = 'accepted'; s.dispatchEvent(new Event('change')); return performance.now() - t; }""")
    timing["open_trace_ms"] = statistics.median(
        page.evaluate("""() => {
        const out = [];
        for (let i = 0; i < 5; i++) {  // re-query: opening a trace re-renders the visible rows
            const row = document.querySelectorAll('#list .row')[i]; if (!row) break;
            const t = performance.now(); row.click(); out.push(performance.now() - t); }
        return out; }""")
    )
    timing["deep_search_ms"] = page.evaluate("""() => {
        const q = document.getElementById('f-text'), d = document.getElementById('f-deep');
        q.value = 'let me double-check'; d.checked = true; const t = performance.now();
        d.dispatchEvent(new Event('change')); return performance.now() - t; }""")
    timing["wall_to_ready_s"] = to_ready
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--workdir", type=Path, default=None, help="keep runs and reports here (default: a temp dir)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="drp-report-bench-"))
    runs = workdir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    results = []
    for size in sizes:
        run = rules_run(runs, size)
        out = workdir / f"report-{size}.html"
        seconds = []
        for _ in range(2):
            result = write_report(str(run), out=out)
            seconds.append(result.seconds)
        results.append((size, result, min(seconds)))
        print(
            f"{result.traces:>6} traces: generation {min(seconds):.2f} s (best of 2), file {result.bytes / 1e6:.1f} MB"
        )

    if args.no_browser:
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("DRP_CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        for _size, result, _ in results:
            figures = []
            for _ in range(2):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                figures.append(browser_figures(context.new_page(), result.path))
                context.close()
            best = {k: min(f[k] for f in figures) for k in figures[0] if figures[0][k] is not None}
            print(
                f"{result.traces:>6} traces in Chromium (best of 2): first render {best['rendered']:.0f} ms, "
                f"painted {best['painted']:.0f} ms, DOMContentLoaded {best['dom_content_loaded']:.0f} ms, "
                f"load {best['load']:.0f} ms; status filter {best['filter_ms']:.1f} ms, open trace "
                f"{best['open_trace_ms']:.1f} ms, full-text search {best['deep_search_ms']:.0f} ms"
                + (f", JS heap {best['heap_mb']:.0f} MB" if "heap_mb" in best else "")
            )
        browser.close()
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
