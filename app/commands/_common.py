"""Helpers shared by the CLI verbs: outputs that never overwrite, JSON, signals, sources.

Output paths are checked before any work starts (:func:`check_outputs`, called by
``app/cli.py`` for every verb): a path that is an existing session store is refused
always; any other existing file is refused unless ``--force``; two outputs of one command
may not be the same path, nor the session store it writes into (a verb module says which
with ``written_store(args) -> Path | None``). Finished files are written atomically
(:func:`acquisition.settings.atomic_output`), which refuses a session store once more at
the rename.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import DuyguError
from acquisition.settings import (
    clear_ending_signal,
    is_session_store,
    load_settings,
    note_ending_signal,
    raise_if_ending,
    store_files,
)

#: argparse destinations that name files a verb writes, and their flags
OUTPUT_DESTS: dict[str, str] = {"out": "--out", "json": "--json", "report": "--report", "jsonl": "--jsonl",
                                "csv": "--csv", "markdown": "--markdown"}


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
    """Write ``obj`` as JSON to ``out`` (``-`` is standard output), atomically."""
    from acquisition.settings import write_text_atomic

    text = json.dumps(obj, indent=2, default=_default, allow_nan=False)
    if str(out) == "-":
        sys.stdout.write(text + "\n")
    else:
        write_text_atomic(out, text + "\n")


def check_outputs(outputs: dict[str, str | Path | None], force: bool = False,
                  directories: tuple[str, ...] = (), stores: dict[str, str | Path | None] | None = None) -> None:
    """Refuse, before any work, outputs that would replace what Duygu must not replace.

    Parameters
    ----------
    outputs : dict
        Flag (``--out``) -> path; ``None``, ``""`` and ``-`` (stdout) are skipped.
    force : bool
        Allow replacing existing files -- never a session store, never a directory.
    directories : tuple of str
        Flags whose path is a folder to create (existing empty folders are fine).
    stores : dict, optional
        Flag (``--store``) -> the session store the command writes into (created if
        missing). It may exist, but no output may be that file or its ``-wal``,
        ``-shm`` or ``-journal``: the command would write its output over the store it
        has just filled.

    Raises
    ------
    DuyguError
        One line naming the flag, the path and the rule.
    """
    seen: dict[Path, str] = {}
    for flag, value in (stores or {}).items():
        if value is None or str(value) == "":
            continue
        seen.update(dict.fromkeys(store_files(value), flag))
    for flag, value in outputs.items():
        if value is None or str(value) in ("", "-"):
            continue
        path = Path(value).expanduser()
        key = path.resolve()
        if key in seen:
            raise DuyguError(f"{flag} and {seen[key]} name the same file {str(path)!r}; give each its own path")
        seen[key] = flag
        if is_session_store(path):
            raise DuyguError(f"{flag} {str(path)!r} is a session store; Duygu never overwrites one "
                             "(--force does not change that): choose another path")
        if flag in directories:
            if path.exists() and not path.is_dir():
                raise DuyguError(f"{flag} {str(path)!r} exists and is not a directory")
            if path.is_dir() and any(path.iterdir()):
                raise DuyguError(f"{flag} {str(path)!r} is not empty; choose a new or empty directory")
            continue
        if path.is_dir():
            raise DuyguError(f"{flag} {str(path)!r} is a directory; give a file name")
        if path.exists() and not force:
            raise DuyguError(f"{flag} {str(path)!r} exists; choose another path or add --force to replace it")


def outputs_of(args: argparse.Namespace) -> dict[str, str | Path | None]:
    """The output paths of a parsed command line, by flag."""
    return {flag: getattr(args, dest) for dest, flag in OUTPUT_DESTS.items() if hasattr(args, dest)}


def add_force_flags(parser: argparse.ArgumentParser) -> None:
    """Give ``--force`` to ``parser`` and every sub-command parser that has an output flag."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                add_force_flags(sub)
    dests = {a.dest for a in parser._actions}
    if dests & set(OUTPUT_DESTS) and "force" not in dests:
        parser.add_argument("--force", action="store_true",
                            help="replace existing output files (never a session store)")


@contextlib.contextmanager
def ending_signals(guard_outputs: bool = False) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` in the main
    thread, so a verb ends on them exactly as on Ctrl-C (its data flushed, its status
    stored, its temporary files removed); the previous handlers come back afterwards.
    Outside the main thread (where Python cannot install handlers) it does nothing.

    Parameters
    ----------
    guard_outputs : bool
        Also note the signal (:func:`acquisition.settings.note_ending_signal`) for as
        long as the block runs. The exception a handler raises can be lost -- C code that
        calls back into Python (numpy's string formatting) may clear it and carry on --
        so with this, no atomic output is renamed into place after the signal, and a
        block that ends normally although a signal came raises :class:`KeyboardInterrupt`
        at its end. ``app/cli.py`` wraps every verb so; a verb that catches the
        interrupt itself to keep what it has (``record``, ``session run``, ``predict``)
        opens its own block without it, and a signal inside that block is its own.
    """
    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if guard_outputs:
            note_ending_signal(name)
        raise KeyboardInterrupt(name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
        if guard_outputs:
            raise_if_ending()  # the handler's exception was lost on the way: end now
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        if guard_outputs:
            clear_ending_signal()


def store_path(args: argparse.Namespace) -> Path:
    """The ``--store`` path, or the default one from the settings."""
    if getattr(args, "store", None):
        return Path(args.store)
    return load_settings().store_path


def participant_ids(ids: str | list[str] | None) -> list[str] | None:
    """Participant ids given to select sessions (``P01,P02`` or a list), each checked like
    an id being stored: one that breaks the lab's rule may be a name, so it is refused and
    never repeated (not even in "has no sessions"). ``None`` when none were given."""
    from acquisition.store.sqlite import validate_participant

    if ids is None:
        return None
    items = [t.strip() for t in ids.split(",")] if isinstance(ids, str) else [str(t).strip() for t in ids]
    pattern = load_settings().participant_pattern
    return [validate_participant(t, pattern) for t in items if t]


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
