"""Session store benchmarks: commit capacity and export speed, as multiples of real time.

* commit capacity: 0.25 s chunks of 14-channel EEG committed one transaction each (WAL,
  ``synchronous=FULL``, an fsync per commit), in seconds of EEG stored per second of
  wall time; the recorder needs 1x (target >= 20x, so a slow disk still keeps up).
* export: BIDS (EDF) and CSV export of a 5-minute session, in seconds of EEG per second.
* recording against its peers, same samples, same 0.25 s chunks, same run: ``duygu
  record``'s CSV writer (:class:`~acquisition.store.recorder.CsvRecorder` reading the
  ring buffer) against ``numpy.savetxt`` of each chunk (the same bytes; checked), and the
  store's ``append_eeg`` against a plain SQLite insert loop (one row per sample,
  ``executemany`` and a commit per chunk, the same WAL + ``synchronous=FULL``). CPU time
  of the writing thread (the figure a shared machine does not inflate) and wall time
  (fsyncs included) are both reported; the ratios are duygu / peer.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from acquisition.channels import SFREQ_HZ
from acquisition.sources.simulated import EpocSimulator
from acquisition.store.export import export_bids, export_csv
from acquisition.store.sqlite import SessionStore


def _ratio(name: str, peer: str, duygu: float, other: float, unit: str, target: str | None,
           limit: float | None) -> dict[str, object]:
    ratio = duygu / other if other > 0 else float("inf")
    return {"name": f"{name}: duygu/{peer}", "value": ratio, "unit": "x", "target": target,
            "ok": None if limit is None else bool(ratio <= limit), "duygu": duygu, "peer": other,
            "peer_name": peer, "measure_unit": unit}


def recording_vs_peers(seconds: float, tmp: Path) -> list[dict[str, object]]:
    """CSV and store writing against numpy.savetxt and a plain SQLite insert loop."""
    import sqlite3

    from acquisition.channels import EPOC_CHANNELS
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.recorder import _CSV_ROW, CsvRecorder

    chunk = int(SFREQ_HZ / 4)
    n = int(seconds * SFREQ_HZ)
    data = EpocSimulator(1).generate(n)
    times = 1000.0 + np.arange(n) / SFREQ_HZ
    source = SimulatedEpocSource(seed=1, buffer_seconds=30.0)  # not connected: fed here
    recorder = CsvRecorder(source, tmp / "duygu.csv", start_index=0)
    fmt = _CSV_ROW.rstrip("\n").split(",")
    cpu = {"duygu": 0.0, "peer": 0.0}
    wall = {"duygu": 0.0, "peer": 0.0}
    with open(tmp / "savetxt.csv", "w", newline="", encoding="utf-8") as peer_file:
        csv.writer(peer_file).writerow(["time", *EPOC_CHANNELS])  # the header as duygu writes it
        for a in range(0, n, chunk):
            source.buffer.push(data[a:a + chunk], times[a:a + chunk])
            t0, c0 = time.perf_counter(), time.thread_time()
            recorder.flush()
            cpu["duygu"] += time.thread_time() - c0
            wall["duygu"] += time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.thread_time()
            np.savetxt(peer_file, np.column_stack([times[a:a + chunk], data[a:a + chunk]]), fmt=fmt, delimiter=",")
            peer_file.flush()
            cpu["peer"] += time.thread_time() - c0
            wall["peer"] += time.perf_counter() - t0
    recorder.close()
    same_csv = (tmp / "duygu.csv").read_bytes() == (tmp / "savetxt.csv").read_bytes()

    store = SessionStore(tmp / "rec.sqlite")
    sid = store.start_session("B02", {"name": "bench"}, "simulated", {"kind": "simulated"})
    conn = sqlite3.connect(tmp / "plain.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    cols = ", ".join(f"{c} REAL" for c in EPOC_CHANNELS)
    conn.execute(f"CREATE TABLE eeg (idx INTEGER PRIMARY KEY, t REAL, {cols})")
    insert = f"INSERT INTO eeg VALUES ({', '.join(['?'] * (2 + len(EPOC_CHANNELS)))})"
    scpu = {"duygu": 0.0, "peer": 0.0}
    swall = {"duygu": 0.0, "peer": 0.0}
    for a in range(0, n, chunk):
        t0, c0 = time.perf_counter(), time.thread_time()
        store.append_eeg(sid, data[a:a + chunk], times[a:a + chunk], a)
        scpu["duygu"] += time.thread_time() - c0
        swall["duygu"] += time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.thread_time()
        block = data[a:a + chunk]
        conn.execute("BEGIN")
        conn.executemany(insert, [(a + i, float(times[a + i]), *map(float, block[i])) for i in range(len(block))])
        conn.execute("COMMIT")
        scpu["peer"] += time.thread_time() - c0
        swall["peer"] += time.perf_counter() - t0
    store.finish_session(sid)
    store.close()
    stored = conn.execute("SELECT COUNT(*) FROM eeg").fetchone()[0]
    conn.close()
    if stored != n:
        raise RuntimeError(f"the plain insert loop stored {stored} of {n} samples")
    label = f"recording {seconds:g} s in 0.25 s chunks"
    return [
        _ratio(f"{label}, CSV writing cpu (same bytes: {same_csv})", "numpy.savetxt",
               1000 * cpu["duygu"], 1000 * cpu["peer"], "ms CPU", "<= 1.0x", 1.0),
        _ratio(f"{label}, CSV writing wall", "numpy.savetxt", 1000 * wall["duygu"], 1000 * wall["peer"],
               "ms", None, None),
        _ratio(f"{label}, store commit cpu (WAL, synchronous=FULL)", "sqlite insert loop",
               1000 * scpu["duygu"], 1000 * scpu["peer"], "ms CPU", "<= 1.0x", 1.0),
        _ratio(f"{label}, store commit wall (fsync per chunk, load-dependent)", "sqlite insert loop",
               1000 * swall["duygu"], 1000 * swall["peer"], "ms", None, None),
    ]


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
        peers = recording_vs_peers(seconds, tmp)
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
        *peers,
    ]
