"""``duygu bench``: run every benchmark in ``benchmarks/``."""

from __future__ import annotations

import argparse
import json
import pkgutil
import platform
import subprocess
import sys
import time

from acquisition.errors import DuyguError

_MARK = "DUYGU-BENCH-JSON:"

HELP = "run the benchmarks in benchmarks/ and print (or save) their figures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="OUT", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--markdown", metavar="OUT", help="write the results as a Markdown table")
    p.add_argument("--only", metavar="NAME", help="run only benchmark modules whose name contains NAME")
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not a measurement)")


def run(args: argparse.Namespace) -> int:
    import benchmarks
    from app.commands._common import write_json

    results: list[dict[str, object]] = []
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if args.only in n]
    for name in names:
        t0 = time.perf_counter()
        rows = _run_isolated(name, args.quick)
        for row in rows:
            row.setdefault("module", name)
            results.append(row)
            target = f"  (target {row['target']})" if row.get("target") else ""
            print(f"{row['name']:<60} {row['value']:>12.4g} {row['unit']}{target}")
        print(f"  [{name}: {time.perf_counter() - t0:.1f} s]")
    report = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "command": "duygu bench" + (" --quick" if args.quick else ""),
        "results": results,
    }
    if args.json:
        write_json(report, args.json)
    if args.markdown:
        _write_markdown(report, args.markdown)
    return 0


def _run_isolated(name: str, quick: bool) -> list[dict[str, object]]:
    """Run one benchmark module in a child process (no state shared between benchmarks)."""
    code = (
        "import json, sys\n"
        f"from benchmarks import {name} as m\n"
        f"rows = m.run(quick={quick!r})\n"
        f"sys.stdout.write({_MARK!r} + json.dumps(rows) + '\\n')\n"
        "sys.stdout.flush()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            rows: list[dict[str, object]] = json.loads(line[len(_MARK):])
            return rows
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise DuyguError(f"benchmark {name} failed (exit status {proc.returncode}): {tail}")


def _write_markdown(report: dict, out: str) -> None:  # type: ignore[type-arg]
    from pathlib import Path

    lines = [
        "| benchmark | value | unit | target | met |",
        "|---|---:|---|---|---|",
    ]
    for row in report["results"]:
        met = {True: "yes", False: "**no**", None: ""}[row.get("ok")]
        lines.append(f"| {row['name']} | {row['value']:.4g} | {row['unit']} | {row.get('target') or ''} | {met} |")
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
