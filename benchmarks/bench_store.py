"""Session store benchmarks: commit capacity and export speed, as multiples of real time.

* commit capacity: 0.25 s chunks of 14-channel EEG committed one transaction each (WAL,
  ``synchronous=FULL``, an fsync per commit), in seconds of EEG stored per second of
  wall time; the recorder needs 1x (target >= 20x, so a slow disk still keeps up).
* export: BIDS (EDF) and CSV export of a 5-minute session, in seconds of EEG per second.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from acquisition.channels import SFREQ_HZ
from acquisition.sources.simulated import EpocSimulator
from acquisition.store.export import export_bids, export_csv
from acquisition.store.sqlite import SessionStore


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 30.0 if quick else 300.0
    chunk = int(SFREQ_HZ / 4)
    n = int(seconds * SFREQ_HZ)
    data = EpocSimulator(0).generate(n)
    times = np.arange(n) / SFREQ_HZ
    tmp = Path(tempfile.mkdtemp(prefix="duygu-bench-store-"))
    try:
        store = SessionStore(tmp / "bench.sqlite")
        sid = store.start_session("B01", {"name": "bench"}, "simulated", {"kind": "simulated"})
        t0 = time.perf_counter()
        for a in range(0, n, chunk):
            store.append_eeg(sid, data[a : a + chunk], times[a : a + chunk], a)
        commit_s = time.perf_counter() - t0
        store.finish_session(sid)
        n_commits = int(np.ceil(n / chunk))
        t0 = time.perf_counter()
        export_bids(store, sid, tmp / "bids")
        bids_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_csv(store, sid, tmp / "csv")
        csv_s = time.perf_counter() - t0
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    capacity = seconds / commit_s
    return [
        {"name": "store: EEG commit capacity (0.25 s chunks, synchronous=FULL)", "value": capacity,
         "unit": "x real time", "target": ">= 20x", "ok": capacity >= 20},
        {"name": "store: mean commit time of a 0.25 s chunk", "value": 1000 * commit_s / n_commits,
         "unit": "ms", "target": None, "ok": None},
        {"name": f"store: BIDS export of {seconds:g} s", "value": seconds / bids_s, "unit": "x real time",
         "target": None, "ok": None},
        {"name": f"store: CSV export of {seconds:g} s", "value": seconds / csv_s, "unit": "x real time",
         "target": None, "ok": None},
    ]
