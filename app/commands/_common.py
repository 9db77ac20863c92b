"""Helpers shared by the CLI verbs: JSON output and source options."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(obj: Any, out: str | Path) -> None:
    """Write ``obj`` as JSON to ``out`` (``-`` is standard output)."""
    text = json.dumps(obj, indent=2, default=_default, allow_nan=False)
    if str(out) == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")


def add_source_argument(parser: argparse.ArgumentParser, default: str | None = "simulated") -> None:
    parser.add_argument(
        "--source",
        default=default,
        required=default is None,
        metavar="SPEC",
        help="simulated[:SEED], lsl:NAME, lsl:type=EEG, brainflow:BOARD_ID or replay:PATH[@SPEED]"
        + (f" (default: {default})" if default else ""),
    )


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value
