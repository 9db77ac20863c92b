"""``duygu bench``: run every benchmark in ``benchmarks/``.

The benchmark files are found by path (``bench_*.py`` in the checkout's ``benchmarks/``
folder, or ``--dir``) and each runs in its own process: the app never imports them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from acquisition.errors import DuyguError

#: ``benchmarks/`` beside the ``app`` package in a source checkout
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "benchmarks"

_MARK = "DUYGU-BENCH-JSON:"

HELP = "run the benchmarks in benchmarks/ and print (or save) their figures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="OUT", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--markdown", metavar="OUT", help="write the results as a Markdown table")
    p.add_argument("--only", metavar="NAME", help="run only benchmark modules whose name contains NAME")
    p.add_argument("--dir", metavar="DIR", type=Path, default=DEFAULT_DIR,
                   help="folder of the bench_*.py files (default: benchmarks/ of this checkout)")
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not a measurement)")


def run(args: argparse.Namespace) -> int:
    from app.commands._common import write_json

    results: list[dict[str, object]] = []
    files = discover(args.dir)
    names = sorted(files)
    if args.only:
        names = [n for n in names if args.only in n]
        if not names:
            raise DuyguError(f"--only {args.only!r} matches no benchmark; the benchmarks are: "
                             f"{', '.join(sorted(files))}")
    for name in names:
        t0 = time.perf_counter()
        rows = _run_isolated(name, files[name], args.quick)
        for row in rows:
            row.setdefault("module", name)
            results.append(row)
            target = f"  (target {row['target']})" if row.get("target") else ""
            print(f"{row['name']:<60} {row['value']:>12.4g} {row['unit']}{_absolutes(row)}{target}")
        print(f"  [{name}: {time.perf_counter() - t0:.1f} s]")
    report = {
        "machine": _machine(),
        "command": " ".join(["duygu", "bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else
        "duygu bench" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results": results,
    }
    if args.json:
        write_json(report, args.json)
    if args.markdown:
        _write_markdown(report, args.markdown)
    return 0


def discover(folder: Path) -> dict[str, Path]:
    """The benchmark files of ``folder``, by module name (``bench_store`` -> its path)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DuyguError(f"benchmark folder {str(folder)!r} not found (run from a source checkout or pass --dir)")
    files = {p.stem: p for p in sorted(folder.glob("bench_*.py"))}
    if not files:
        raise DuyguError(f"benchmark folder {str(folder)!r} has no bench_*.py files")
    return files


def _run_isolated(name: str, path: Path, quick: bool) -> list[dict[str, object]]:
    """Run one benchmark file in a child process (no state shared between benchmarks)."""
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(path.parent)!r})\n"
        f"m = importlib.import_module({name!r})\n"
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


def _machine() -> dict[str, object]:
    """What the figures were measured on (a shared machine's load included)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "cpu": model, "cores": os.cpu_count(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average_at_end": None if load is None else [round(v, 2) for v in load]}


def _absolutes(row: dict[str, object]) -> str:
    """``  (duygu 1.2 ms, mne-lsl 2.4 ms)`` for a ratio row, else empty."""
    if "duygu" not in row or "peer" not in row:
        return ""
    unit = row.get("measure_unit", "")
    return f"  (duygu {row['duygu']:.4g} {unit}, {row.get('peer_name', 'peer')} {row['peer']:.4g} {unit})"


def _write_markdown(report: dict, out: str) -> None:  # type: ignore[type-arg]
    """One table per benchmark module: Duygu, the peer, the ratio, the target, met."""
    machine = report["machine"]
    lines = [
        f"Command: `{report['command']}`  ",
        f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('system')}, Python "
        f"{machine.get('python')}; load average at the end {machine.get('load_average_at_end')}  ",
        f"Date: {report.get('date', '')}",
        "",
    ]
    modules: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for row in report["results"]:
        modules.setdefault(str(row.get("module", "")), []).append(row)
    folder = Path(out).resolve().parent
    for module, rows in modules.items():
        lines += [f"### {module}", "", "| benchmark | duygu | peer | ratio duygu/peer | target | met |",
                  "|---|---:|---:|---:|---|---|"]
        plots = []
        for row in rows:
            met = {True: "yes", False: "**no**", None: ""}[row.get("ok")]
            unit = row.get("measure_unit", "")
            if "duygu" in row:
                duygu = f"{row['duygu']:.4g} {unit}"
                peer = f"{row['peer']:.4g} {unit} ({row.get('peer_name', '')})"
                ratio = f"{row['value']:.3g}x"
            else:
                duygu, peer, ratio = f"{row['value']:.4g} {row['unit']}", "", ""
            lines.append(f"| {row['name']} | {duygu} | {peer} | {ratio} | {row.get('target') or ''} | {met} |")
            if row.get("plot"):
                plot = Path(str(row["plot"]))
                try:
                    plots.append(str(plot.resolve().relative_to(folder)))
                except ValueError:
                    plots.append(str(plot))
        lines.append("")
        lines += [f"![{module}]({p})\n" for p in plots]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
