"""Progress with an ETA for long evaluations: one clock for the CLI bar and the GUI.

:class:`Eta` turns ``(done, total)`` updates into an estimate of the time left (the
mean time per finished work unit so far times the units left). :func:`stderr_progress`
draws it on standard error: a tqdm bar on a terminal, and otherwise (a log file, CI, a
pipe) one plain line every ``every_s`` seconds and a last one when the work is done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class Eta:
    """Elapsed time and estimated time left of ``total`` work units.

    Parameters
    ----------
    clock : callable
        Seconds, monotonic (``time.monotonic``; tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0 = clock()
        self.done = 0
        self.total = 0

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.t0

    @property
    def remaining_s(self) -> float | None:
        """Seconds left, ``None`` before the first unit has finished."""
        if self.done <= 0 or self.total <= 0:
            return None
        return self.elapsed_s / self.done * max(self.total - self.done, 0)

    def short(self) -> str:
        """``120/1000 · ETA 4 min 16 s`` (for a GUI progress bar, which shows the percentage)."""
        left = self.remaining_s
        return f"{self.done}/{self.total} · " + ("ETA …" if left is None else f"ETA {format_duration(left)}")

    def text(self, what: str = "units") -> str:
        """``120/1000 units (12%), 35 s elapsed, ETA 4 min 16 s``."""
        pct = 100.0 * self.done / self.total if self.total else 0.0
        left = self.remaining_s
        eta = "ETA unknown" if left is None else f"ETA {format_duration(left)}"
        return f"{self.done}/{self.total} {what} ({pct:.0f}%), {format_duration(self.elapsed_s)} elapsed, {eta}"


def stderr_progress(description: str, stream: TextIO | None = None, every_s: float = 5.0,
                    tty: bool | None = None, clock: Callable[[], float] = time.monotonic
                    ) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``progress(done, total)`` callback for the engine, and its closer.

    On a terminal a tqdm bar (with its own ETA); otherwise a line
    ``<description>: 120/1000 work units (12%), 35 s elapsed, ETA 4 min 16 s`` at most
    every ``every_s`` seconds, and one when the last unit is done.
    """
    out = stream if stream is not None else sys.stderr
    is_tty = out.isatty() if tty is None else tty
    eta = Eta(clock)
    state: dict[str, Any] = {"last": None, "bar": None, "final": False}

    def update(done: int, total: int) -> None:
        eta.update(done, total)
        if is_tty:
            from tqdm import tqdm

            if state["bar"] is None:
                state["bar"] = tqdm(total=total, desc=description, file=out, unit="unit", leave=False)
            state["bar"].update(done - state["bar"].n)
            return
        now = clock()
        last = state["last"]
        if done >= total or last is None or now - last >= every_s:
            state["last"] = now
            state["final"] = done >= total
            print(f"{description}: {eta.text('work units')}", file=out, flush=True)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close
