"""Acquisition benchmarks: LSL push -> ring buffer latency, ingest capacity, reader CPU.

An outlet imitating EmotivPRO (19 channels, Counter, float64) runs in another process
(this module run as a script). The reader is :class:`acquisition.sources.lsl.LslSource` with its
own thread; a second thread waits on the ring buffer (``buffer.wait_for``).

- **latency**: at 1x the outlet pushes chunks of 4 samples (EmotivPRO's rhythm) and
  writes ``local_clock()`` at the moment of the push into ``AF3``; the waiting thread
  takes ``local_clock()`` when each sample is in the buffer. LSL's clock is shared by the
  processes of one machine.
- **reader CPU at 1x**: CPU time of the reader thread (``/proc/self/task/<tid>/stat``)
  over the same run, as a share of one core.
- **ingest capacity**: the reader's inlet is subscribed but its thread waits at a gate
  while the outlet pushes 40,000 samples (chunks of 32, 5 min of EPOC+ data); then the
  gate opens and the time until all are in the ring buffer gives the reader's rate, as
  a multiple of the EPOC+ data rate (128 samples/s of 19 channels).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from acquisition.sources.base import ReadResult
    from acquisition.sources.lsl import LslSource

EMOTIV_19 = ("Timestamp", "Counter", "Interpolate", "AF3", "F7", "F3", "FC5", "T7", "P7", "O1",
             "O2", "P8", "T8", "FC6", "F4", "F8", "AF4", "HardwareMarker", "Markers")
RATE_HZ = 128.0


def _start_outlet(mode: str, name: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, os.path.abspath(__file__), mode, "--name", name,
           "--parent", str(os.getpid()), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _thread_cpu_s(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process (Linux)."""
    with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _measure_paced(seconds: float) -> tuple[np.ndarray, float]:
    """Latencies (ms) of every sample and the reader thread's CPU share at 1x."""
    from acquisition.sources.base import local_clock
    from acquisition.sources.lsl import LslSource

    name = f"duygu-bench-{uuid.uuid4().hex[:8]}"
    outlet = _start_outlet("paced", name, "--seconds", f"{seconds + 30:g}")
    source = LslSource(name, buffer_seconds=seconds + 60)
    latencies: list[np.ndarray] = []
    try:
        source.connect(timeout_s=20)
        thread = source._thread
        assert thread is not None and thread.native_id is not None
        cpu0, wall0 = _thread_cpu_s(thread.native_id), time.perf_counter()
        cursor = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not source.buffer.wait_for(cursor, timeout_s=1.0):
                continue
            now = local_clock()
            chunk = source.buffer.since(cursor)
            latencies.append((now - chunk.data[:, 0]) * 1e3)
            cursor = chunk.next_index
        cpu_share = (_thread_cpu_s(thread.native_id) - cpu0) / (time.perf_counter() - wall0)
    finally:
        source.disconnect()
        _stop(outlet)
    lat = np.concatenate(latencies) if latencies else np.zeros(0)
    return lat[64:] if len(lat) > 128 else lat, cpu_share  # skip the connection warm-up


def _gated_source(name: str, buffer_seconds: float) -> tuple[LslSource, threading.Event]:
    """An LslSource whose reader waits at a gate before each pull until the gate opens."""
    from acquisition.sources.lsl import LslSource

    gate = threading.Event()

    class GatedLslSource(LslSource):
        def _read(self, timeout_s: float) -> ReadResult | None:
            if not gate.wait(timeout_s):
                return None
            return super()._read(timeout_s)

    return GatedLslSource(name, buffer_seconds=buffer_seconds, loss_timeout_s=300.0), gate


def _measure_capacity(n_samples: int) -> tuple[float, int]:
    """(samples/s from a full inlet queue into the buffer, samples lost).

    The inlet is subscribed while its reader waits at a gate; the outlet pushes all
    samples, then the gate opens: the rate measured is the reader's alone.
    """
    name = f"duygu-bench-{uuid.uuid4().hex[:8]}"
    outlet = _start_outlet("flood", name, "--samples", str(n_samples))
    source, gate = _gated_source(name, n_samples / RATE_HZ + 10)
    try:
        source.connect(timeout_s=20)
        assert outlet.stdout is not None
        outlet.stdout.readline()  # the outlet has pushed everything
        t_start = time.perf_counter()
        gate.set()
        done = source.buffer.wait_for(n_samples - 1, timeout_s=120)
        elapsed = time.perf_counter() - t_start
        lost = source.counters.lost
        if not done:
            raise RuntimeError(f"only {source.buffer.total} of {n_samples} samples arrived")
    finally:
        source.disconnect()
        _stop(outlet)
    return n_samples / elapsed, lost


def run(quick: bool = False) -> list[dict[str, object]]:
    """Latency p50/p99 (ms), ingest capacity (x EPOC+ rate), reader CPU at 1x (% core)."""
    seconds = 4.0 if quick else 20.0
    lat_ms, cpu_share = _measure_paced(seconds)
    n = 20_000 if quick else 40_000  # below the inlet's 360 s buffer at 128 Hz
    ingest_rate, lost = _measure_capacity(n)
    capacity = ingest_rate / RATE_HZ
    return [
        {"name": "lsl push -> ring buffer latency p50", "value": float(np.percentile(lat_ms, 50)),
         "unit": "ms", "target": None, "ok": None},
        {"name": "lsl push -> ring buffer latency p99", "value": float(np.percentile(lat_ms, 99)),
         "unit": "ms", "target": None, "ok": None},
        {"name": "lsl ingest capacity (19-ch EmotivPRO layout)", "value": capacity,
         "unit": "x EPOC+ rate", "target": ">= 100x", "ok": bool(capacity >= 100 and lost == 0)},
        {"name": "lsl reader thread CPU at 1x", "value": 100.0 * cpu_share,
         "unit": "% of a core", "target": "< 5%", "ok": bool(cpu_share < 0.05)},
    ]


# -- the outlet process ----------------------------------------------------------------
def _outlet_main(argv: list[str]) -> None:
    import pylsl

    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("paced", "flood"))
    p.add_argument("--name", required=True)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--samples", type=int, default=40_000)
    args = p.parse_args(argv)
    info = pylsl.StreamInfo(args.name, "EEG", len(EMOTIV_19), RATE_HZ, pylsl.cf_double64,
                            f"{args.name}-sid")
    info.set_channel_labels(list(EMOTIV_19))
    outlet = pylsl.StreamOutlet(info, 32, 360)
    if not outlet.wait_for_consumers(30):
        return
    block = np.full((32, len(EMOTIV_19)), 4200.0)
    block[:, 2] = 0.0
    t0 = pylsl.local_clock()
    k = 0
    if args.mode == "paced":
        n_total = int(args.seconds * RATE_HZ)
        while k < n_total and os.getppid() == args.parent:
            due = t0 + (k + 4) / RATE_HZ
            wait = due - pylsl.local_clock()
            if wait > 0:
                time.sleep(wait)  # the imitated headset's pace
            rows = block[:4].copy()
            rows[:, 1] = (k + np.arange(4)) % 128
            rows[:, 3] = pylsl.local_clock()
            outlet.push_chunk(rows, list(t0 + (k + np.arange(4)) / RATE_HZ))
            k += 4
        return
    start = time.perf_counter()
    while k < args.samples:
        n = min(32, args.samples - k)
        idx = k + np.arange(n)
        rows = block[:n].copy()
        rows[:, 1] = idx % 128
        rows[:, 3] = idx
        outlet.push_chunk(rows, list(t0 + idx / RATE_HZ))
        k += n
    print(f"{args.samples / (time.perf_counter() - start):.1f}", flush=True)
    while os.getppid() == args.parent:
        threading.Event().wait(0.2)  # keep the outlet until the reader is done


if __name__ == "__main__":
    _outlet_main(sys.argv[1:])
