"""Helpers for the store tests: filled sessions, the BIDS validator, child processes.

Run as a script, this module is the child process of the store tests::

    python tests/support/store_data.py crash STORE SEED     # records until killed
    python tests/support/store_data.py hold-lock STORE      # holds a write lock until stdin closes
    python tests/support/store_data.py leave-running STORE  # starts a session and exits
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from acquisition.channels import SFREQ_HZ  # noqa: E402

if TYPE_CHECKING:
    from acquisition.store.sqlite import SessionStore

BIDS_VALIDATOR = ROOT / ".tools" / "node_modules" / ".bin" / "bids-validator"


@dataclass
class FilledSession:
    """What :func:`fill_session` wrote, to compare against."""

    session_id: int
    data: np.ndarray  # every stored sample (float32 values), in order
    timestamps: np.ndarray
    indices: np.ndarray
    trial_ids: list[int] = field(default_factory=list)
    gap: tuple[int, int] | None = None  # (first missing index, n missing)


def fill_session(
    store: SessionStore,
    participant: str = "P01",
    seed: int = 0,
    seconds: float = 12.0,
    chunk: int = 64,
    gap: tuple[int, int] | None = None,
    glitch_at: int | None = None,
    trials: tuple[tuple[float, float, str], ...] = ((1.0, 4.0, "happy"), (6.0, 9.0, "sad")),
    t0: float = 1000.0,
) -> FilledSession:
    """Write a session of simulated EEG directly through the store API (no thread).

    ``gap=(start_index, n)`` leaves out ``n`` samples (index and time jump, like a device
    loss); ``glitch_at`` sets one sample of AF3 to 5e5 µV; ``trials`` are
    (onset_s, offset_s, label) relative to the first sample.
    """
    from acquisition.sources.simulated import EpocSimulator

    n = int(seconds * SFREQ_HZ)
    data = EpocSimulator(seed).generate(n).astype(np.float32).astype(np.float64)
    if glitch_at is not None:
        data[glitch_at, 0] = 5e5
    idx = np.arange(n, dtype=np.int64)
    times = t0 + idx / SFREQ_HZ
    keep = np.ones(n, dtype=bool)
    if gap is not None:
        keep[gap[0] : gap[0] + gap[1]] = False
    sid = store.start_session(participant, {"name": "test-protocol"}, f"simulated:{seed}", {"kind": "simulated"})
    kept = np.flatnonzero(keep)
    for run in np.split(kept, np.flatnonzero(np.diff(kept) > 1) + 1):  # chunks never span a gap
        for a in range(0, len(run), chunk):
            rows = run[a : a + chunk]
            store.append_eeg(sid, data[rows], times[rows], int(idx[rows[0]]))
    trial_ids = []
    for k, (on_s, off_s, label) in enumerate(trials):
        on_i, off_i = int(on_s * SFREQ_HZ), int(off_s * SFREQ_HZ)
        tid = store.add_trial(sid, f"stim{k + 1}", label, t0 + on_s, t0 + off_s, on_i, off_i)
        store.add_marker(sid, t0 + on_s, f"stim_on:stim{k + 1}", on_i)
        store.add_marker(sid, t0 + off_s, f"stim_off:stim{k + 1}", off_i)
        store.set_trial_label(tid, label, valence=7 - 2 * k, arousal=5)
        trial_ids.append(tid)
    store.finish_session(sid)
    return FilledSession(sid, data[keep], times[keep], idx[keep], trial_ids, gap)


def run_bids_validator(dataset: Path) -> dict:
    """Run the official bids-validator (npm, installed by the Makefile) with ``--json``."""
    assert BIDS_VALIDATOR.exists(), (
        f"bids-validator not found at {BIDS_VALIDATOR}: run `make setup` "
        "(npm install --prefix .tools bids-validator@1.15.0)"
    )
    proc = subprocess.run(
        [str(BIDS_VALIDATOR), str(dataset), "--json"], capture_output=True, text=True, timeout=120
    )
    start = proc.stdout.find("{")
    assert start >= 0, f"bids-validator printed no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout[start:])


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def query_readonly(path: Path, sql: str) -> list[tuple]:
    """Run ``sql`` on a store through a fresh read-only connection ([] if not ready yet)."""
    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []  # schema not created yet


def child(args: list[str]) -> list[str]:
    """Command line that runs this module as a child process."""
    return [sys.executable, str(Path(__file__).resolve()), *args]


# -- child processes -----------------------------------------------------------------------
def _crash_child(path: str, seed: int) -> None:
    from acquisition.sources.base import local_clock
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.recorder import StoreRecorder
    from acquisition.store.sqlite import SessionStore

    store = SessionStore(path)
    source = SimulatedEpocSource(seed=seed, speed=1.0, chunk_samples=4)
    source.connect()
    sid = store.start_session("crash01", {"name": "crash-test"}, f"simulated:{seed}", source.info.as_dict())
    recorder = StoreRecorder(source, store, sid, start_index=0).start()
    print(f"session {sid}", flush=True)
    for k in range(1000):
        on_i = source.buffer.total
        on_t = local_clock()
        store.add_marker(sid, on_t, f"stim_on:s{k}", on_i)
        source.buffer.wait_for(on_i + 64, 5.0)  # a half-second trial
        off_i = source.buffer.total
        tid = store.add_trial(sid, f"s{k}", "happy", on_t, local_clock(), on_i, off_i)
        store.add_marker(sid, local_clock(), f"stim_off:s{k}", off_i)
        store.set_trial_label(tid, "happy", 7, 6)
    recorder.stop()


def _hold_lock(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO markers(session_id, t, sample_index, text) VALUES (1, 0, 0, 'lock holder')")
    print("locked", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    conn.execute("ROLLBACK")
    conn.close()


def _leave_running(path: str) -> None:
    from acquisition.store.sqlite import SessionStore

    store = SessionStore(path)
    sid = store.start_session("gone01", {"name": "left-running"}, "simulated:1", {})
    store.append_eeg(sid, np.full((32, 14), 4200.0), 5.0 + np.arange(32) / SFREQ_HZ, 0)
    print(sid, flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "crash":
        _crash_child(sys.argv[2], int(sys.argv[3]))
    elif cmd == "hold-lock":
        _hold_lock(sys.argv[2])
    elif cmd == "leave-running":
        _leave_running(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")
