"""LSL ingest, side by side: ``duygu record`` reading an EmotivPRO-layout outlet against
mne-lsl's ``StreamLSL`` reading the same outlet, in the same run.

The outlet (this file run as a script, in its own process) imitates EmotivPRO's EEG
outlet as ``tests/support/lsl_outlets.py``'s ``emotiv`` mode does: 19 float32 channels
``Timestamp, Counter, Interpolate, AF3 ... AF4, HardwareMarker, Markers``, chunks of 4
samples, ``Counter = k % 128``, sample ``k`` stamped ``start + k / (128 * speed)`` from
the moment the first reader subscribes: at ``--speed 50`` it pushes 50 times faster than
the EPOC+ (stamps on the real clock, as a stream labelled 128 Hz sent too fast). The
``Timestamp`` and ``AF3`` columns carry the push time (``local_clock() - t0`` just before
``push_chunk``; float32 holds it to microseconds), so a reader can tell push-to-available
latency from the data alone. LSL's clock is shared by the processes of one machine.

Readers, each in its own process, connected to the same outlet at the same time:

- **duygu**: the real command, ``duygu record --source lsl:NAME --out FILE.csv``: the
  LSL source's reader thread, its ring buffer and the CSV writer.
- **mne-lsl**: ``StreamLSL(bufsize).connect()`` with its defaults (an acquisition every
  1 ms) and a 5 s buffer, and a consumer that takes the new samples (``get_data``)
  every 0.25 s at 1x (as the recorder does) and every 0.04 s at 50x (so the small buffer,
  the cheapest for StreamLSL, never overflows), counting Counter steps to find losses.

Figures:

- **CPU per second** at 1x and 50x the EPOC+ rate: user + system time of each reader
  process (``/proc/PID/stat``, all its threads) over the same steady-state interval of
  wall time, after both have connected and run for a while (start-up and imports are
  outside the interval). The ratio duygu/mne-lsl is the figure that holds on a shared
  machine.
- **push-to-available latency** at 1x: the time from ``push_chunk`` to the sample being
  in the reader's buffer, taken in the reader's own thread for both: for duygu right
  after the source's ``_push`` into its ring buffer, for mne-lsl in a callback (called
  just before its buffer update). Separate processes from the CPU run, so the
  instrumentation costs no CPU there.
- **samples lost**: Counter steps that skip, over every run (0 for both).
- **ingest capacity**: the reader alone emptying a full inlet queue (40,000 samples), as a
  multiple of the EPOC+ rate.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from acquisition.sources.base import ReadResult
    from acquisition.sources.lsl import LslSource

EMOTIV_19 = ("Timestamp", "Counter", "Interpolate", "AF3", "F7", "F3", "FC5", "T7", "P7", "O1",
             "O2", "P8", "T8", "FC6", "F4", "F8", "AF4", "HardwareMarker", "Markers")
RATE_HZ = 128.0
CHUNK = 4  # samples per push_chunk (EmotivPRO's rhythm at 128 Hz)
PEER = "mne-lsl"
#: mne-lsl's buffer (seconds of stream) and how often its consumer takes the new samples:
#: the buffer holds >= 2.5x what arrives between two reads. StreamLSL rolls its whole
#: buffer at every acquisition, so a small buffer read often is the cheapest for it.
MNE_BUFSIZE_S = 5.0
MNE_READ_EVERY_S = {1: 0.25, 50: 0.04}
_HERE = Path(__file__).resolve()


# -- helpers -----------------------------------------------------------------------------
def _script(mode: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(_HERE), mode, "--parent", str(os.getpid()), *args]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_s(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process (Linux)."""
    with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """One line of a child's stdout, or RuntimeError with its stderr when it ends or stalls."""
    assert proc.stdout is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    if not out or not out[0]:
        err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        raise RuntimeError(f"benchmark child {proc.args[2] if isinstance(proc.args, list) else ''} gave no "
                           f"answer within {timeout_s:g} s: {err.strip().splitlines()[-1:] or 'no output'}")
    return out[0].strip()


def _outlet(name: str, speed: float, seconds: float, t0: float) -> subprocess.Popen[str]:
    return _script("outlet", "--name", name, "--speed", f"{speed:g}", "--seconds", f"{seconds:g}",
                   "--t0", repr(t0))


def _wait_csv_rows(partial: Path, proc: subprocess.Popen[str], timeout_s: float) -> None:
    """Until ``duygu record`` has written samples (its ``.partial`` file has rows)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"duygu record ended early: {proc.stderr.read() if proc.stderr else ''}")
        if partial.exists() and partial.stat().st_size > 4096:
            return
        time.sleep(0.05)  # polling a file another process writes (no event to wait on)
    raise RuntimeError(f"duygu record wrote nothing within {timeout_s:g} s")


# -- the CPU run: duygu record vs StreamLSL, same outlet, same interval ------------------
def cpu_run(speed: int, warm_s: float, measure_s: float) -> dict[str, Any]:
    """CPU share (% of a core) of both readers over the same interval, and their losses."""
    import pylsl

    name = f"duygu-bench-{uuid.uuid4().hex[:8]}"
    t0 = pylsl.local_clock()
    total_s = 60.0 + warm_s + measure_s
    outlet = _outlet(name, speed, total_s, t0)
    tmp = Path(tempfile.mkdtemp(prefix="duygu-bench-lsl-"))
    csv, report = tmp / "rec.csv", tmp / "rec.json"
    duygu = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "record", "--source", f"lsl:{name}",
         "--seconds", f"{total_s * speed:g}", "--out", str(csv), "--json", str(report)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=str(_HERE.parents[1]))
    mne = _script("mne-cpu", "--name", name, "--bufsize", f"{MNE_BUFSIZE_S:g}",
                  "--every", f"{MNE_READ_EVERY_S[speed]:g}")
    try:
        if _read_line(mne, 60) != "connected":
            raise RuntimeError("mne-lsl reader did not connect")
        _wait_csv_rows(csv.with_name(csv.name + ".partial"), duygu, 60)
        time.sleep(warm_s)  # both readers in steady state
        c_d, c_m, w0 = _proc_cpu_s(duygu.pid), _proc_cpu_s(mne.pid), time.monotonic()
        time.sleep(measure_s)
        d_d, d_m, wall = _proc_cpu_s(duygu.pid) - c_d, _proc_cpu_s(mne.pid) - c_m, time.monotonic() - w0
        duygu.send_signal(signal.SIGTERM)  # ends as Ctrl-C does: the tail is written, the JSON too
        duygu.communicate(timeout=30)
        assert mne.stdin is not None
        mne.stdin.close()  # the peer's end
        peer = json.loads(_read_line(mne, 30))
        rec = json.loads(report.read_text())
    finally:
        for proc in (duygu, mne, outlet):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return {"duygu_pct": 100.0 * d_d / wall, "peer_pct": 100.0 * d_m / wall, "wall_s": wall,
            "duygu_lost": int(rec["lost"]), "duygu_received": int(rec["received"]),
            "peer_lost": int(peer["lost"]), "peer_received": int(peer["received"])}


# -- the latency run ---------------------------------------------------------------------
def latency_run(seconds: float) -> dict[str, Any]:
    """Push-to-available latencies (ms) of both readers at 1x, same outlet, same time."""
    import pylsl

    name = f"duygu-bench-{uuid.uuid4().hex[:8]}"
    t0 = pylsl.local_clock()
    outlet = _outlet(name, 1, seconds + 60, t0)
    readers = {who: _script(f"{who}-latency", "--name", name, "--t0", repr(t0), "--seconds", f"{seconds:g}")
               for who in ("duygu", "mne")}
    try:
        out = {who: json.loads(_read_line(proc, seconds + 90)) for who, proc in readers.items()}
    finally:
        for proc in (*readers.values(), outlet):
            _stop(proc)
    return out


def _measure_capacity(n_samples: int) -> tuple[float, int]:
    """(samples/s from a full inlet queue into the ring buffer, samples lost).

    The inlet is subscribed while its reader waits at a gate; the outlet pushes all
    samples, then the gate opens: the rate measured is the reader's alone.
    """
    import pylsl

    from acquisition.sources.lsl import LslSource

    gate = threading.Event()

    class GatedLslSource(LslSource):
        def _read(self, timeout_s: float) -> ReadResult | None:
            if not gate.wait(timeout_s):
                return None
            return super()._read(timeout_s)

    name = f"duygu-bench-{uuid.uuid4().hex[:8]}"
    outlet = _script("outlet", "--name", name, "--flood", str(n_samples), "--t0", repr(pylsl.local_clock()))
    source: LslSource = GatedLslSource(name, buffer_seconds=n_samples / RATE_HZ + 10, loss_timeout_s=300.0)
    try:
        source.connect(timeout_s=20)
        _read_line(outlet, 60)  # the outlet has pushed everything
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


def _ratio_row(name: str, duygu: float, peer: float, unit: str, target: str | None,
               limit: float | None) -> dict[str, Any]:
    ratio = duygu / peer if peer > 0 else float("inf")
    return {"name": f"{name}: duygu/{PEER}", "value": ratio, "unit": "x", "target": target,
            "ok": None if limit is None else bool(ratio <= limit),
            "duygu": duygu, "peer": peer, "peer_name": PEER, "measure_unit": unit}


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows (see the module docstring)."""
    warm_s, measure_s = (2.0, 4.0) if quick else (5.0, 30.0)
    rows: list[dict[str, Any]] = []
    lost = {"duygu": 0, "peer": 0}
    for speed, target, limit in ((1, "<= 0.5x", 0.5), (50, "<= 1.0x", 1.0)):
        cpu = cpu_run(speed, warm_s, measure_s if speed == 1 else measure_s / 2)
        rows.append(_ratio_row(f"lsl reader cpu at {speed}x (duygu record with its CSV)", cpu["duygu_pct"],
                               cpu["peer_pct"], "% of a core", target, limit))
        lost["duygu"] += cpu["duygu_lost"]
        lost["peer"] += cpu["peer_lost"]
    lat = latency_run(5.0 if quick else 20.0)
    for q in ("p50", "p99"):
        rows.append(_ratio_row(f"lsl push-to-available latency {q} at 1x", lat["duygu"][q], lat["mne"][q],
                               "ms", None, None))
    lost["duygu"] += lat["duygu"]["lost"]
    lost["peer"] += lat["mne"]["lost"]
    rows.append({"name": f"lsl samples lost over every run: duygu, {PEER}", "value": float(lost["duygu"]),
                 "unit": "samples", "target": "0 for both", "ok": lost["duygu"] == 0 and lost["peer"] == 0,
                 "duygu": float(lost["duygu"]), "peer": float(lost["peer"]), "peer_name": PEER,
                 "measure_unit": "samples"})
    rate, cap_lost = _measure_capacity(20_000 if quick else 40_000)
    rows.append({"name": "lsl ingest capacity, duygu's reader alone (19-ch EmotivPRO layout)",
                 "value": rate / RATE_HZ, "unit": "x EPOC+ rate", "target": ">= 100x",
                 "ok": bool(rate / RATE_HZ >= 100 and cap_lost == 0)})
    return rows


# -- child processes ---------------------------------------------------------------------
def _alive(parent: int) -> bool:
    return os.getppid() == parent


def _outlet_main(args: argparse.Namespace) -> None:
    import pylsl

    info = pylsl.StreamInfo(args.name, "EEG", len(EMOTIV_19), RATE_HZ, pylsl.cf_float32, f"{args.name}-sid")
    info.set_channel_labels(list(EMOTIV_19))
    outlet = pylsl.StreamOutlet(info, 0, 360)
    if not outlet.wait_for_consumers(60):
        return
    t0 = args.t0
    block = np.full((max(CHUNK, 32), len(EMOTIV_19)), 4200.0, dtype=np.float32)
    block[:, 2] = 0.0  # Interpolate
    block[:, 17:] = 0.0  # HardwareMarker, Markers
    if args.flood:
        k = 0
        while k < args.flood:
            n = min(32, args.flood - k)
            idx = k + np.arange(n)
            rows = block[:n].copy()
            rows[:, 1] = idx % 128
            # stamped on the real clock as they are pushed (a burst, as a stalled network sends)
            outlet.push_chunk(rows, (pylsl.local_clock() + 1e-6 * np.arange(n)).tolist())
            k += n
        print("pushed", flush=True)
        while _alive(args.parent):
            threading.Event().wait(0.2)  # keep the outlet until the reader is done
        return
    start = pylsl.local_clock()
    n_total = int(args.seconds * RATE_HZ * args.speed)
    k = 0
    while k < n_total and _alive(args.parent):
        due = start + (k + CHUNK) / (RATE_HZ * args.speed)
        wait = due - pylsl.local_clock()
        if wait > 0:
            time.sleep(wait)  # the imitated headset's pace
        idx = k + np.arange(CHUNK)
        rows = block[:CHUNK].copy()
        rows[:, 1] = idx % 128
        pushed = pylsl.local_clock() - t0
        rows[:, 0] = pushed
        rows[:, 3] = pushed
        outlet.push_chunk(rows, (start + idx / (RATE_HZ * args.speed)).tolist())
        k += CHUNK


def _counter_lost(counter: np.ndarray, last: int | None) -> tuple[int, int | None]:
    """Samples a sequence of Counter values (mod 128) skipped, given the previous value."""
    if len(counter) == 0:
        return 0, last
    c = np.rint(counter).astype(np.int64)
    prev = np.concatenate([[c[0] - 1 if last is None else last], c[:-1]])
    return int(np.sum((c - prev - 1) % 128)), int(c[-1])


def _mne_stream(name: str, bufsize: float) -> Any:
    from mne_lsl.stream import StreamLSL

    stream = StreamLSL(bufsize, name=name)
    stream.connect(timeout=30)
    return stream


def _mne_cpu_main(args: argparse.Namespace) -> None:
    """StreamLSL with its defaults and a consumer every ``--every`` s, until stdin closes."""
    import mne

    mne.set_log_level("ERROR")
    stream = _mne_stream(args.name, args.bufsize)
    print("connected", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    counter = stream.ch_names.index("Counter")
    last_t = -np.inf
    last_c: int | None = None
    received = lost = 0
    while not done.wait(args.every) and _alive(args.parent):
        data, ts = stream.get_data()  # the whole buffer is a view: take the new samples
        new = ts > max(last_t, 0.0)  # (the buffer starts as zeros stamped 0)
        if new.any():
            lost_now, last_c = _counter_lost(data[counter, new], last_c)
            lost += lost_now
            received += int(new.sum())
            last_t = float(ts[new][-1])
    stream.disconnect()
    print(json.dumps({"received": received, "lost": lost}), flush=True)


def _summary(lat_ms: list[float], lost: int, received: int) -> dict[str, Any]:
    a = np.asarray(lat_ms)
    a = a[len(a) // 10:]  # the connection's first tenth is warm-up
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "n": len(a),
            "lost": lost, "received": received}


def _duygu_latency_main(args: argparse.Namespace) -> None:
    from acquisition.sources.base import local_clock
    from acquisition.sources.lsl import LslSource

    lat: list[float] = []

    class TimedLslSource(LslSource):
        def _push(self, res: ReadResult, last_time: float | None) -> None:
            super()._push(res, last_time)
            now = local_clock()  # the samples are in the ring buffer, for every reader
            lat.extend(((now - args.t0 - res.data[:, 0]) * 1e3).tolist())

    source = TimedLslSource(args.name, buffer_seconds=args.seconds + 60)
    source.connect(timeout_s=30)
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end and _alive(args.parent):
            time.sleep(0.1)  # the reader thread does the work
    finally:
        source.disconnect()
    print(json.dumps(_summary(lat, source.counters.lost, source.counters.received)), flush=True)


def _mne_latency_main(args: argparse.Namespace) -> None:
    import mne
    import pylsl

    mne.set_log_level("ERROR")
    stream = _mne_stream(args.name, 5.0)
    lat: list[float] = []
    state: dict[str, Any] = {"last": None, "lost": 0, "received": 0}
    af3 = stream.ch_names.index("AF3")
    counter = stream.ch_names.index("Counter")

    def on_chunk(data: np.ndarray, timestamps: np.ndarray, info: Any) -> tuple[np.ndarray, np.ndarray]:
        now = pylsl.local_clock()  # just before mne-lsl puts the chunk into its buffer
        lat.extend(((now - args.t0 - data[:, af3].astype(np.float64)) * 1e3).tolist())
        lost_now, state["last"] = _counter_lost(data[:, counter], state["last"])
        state["lost"] += lost_now
        state["received"] += len(timestamps)
        return data, timestamps

    stream.add_callback(on_chunk)
    end = time.monotonic() + args.seconds
    while time.monotonic() < end and _alive(args.parent):
        time.sleep(0.1)  # the callback does the work in mne-lsl's acquisition thread
    stream.disconnect()
    print(json.dumps(_summary(lat, state["lost"], state["received"])), flush=True)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("outlet", "mne-cpu", "duygu-latency", "mne-latency"))
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--t0", type=float, default=0.0)
    p.add_argument("--flood", type=int, default=0)
    p.add_argument("--bufsize", type=float, default=5.0)
    p.add_argument("--every", type=float, default=0.25)
    args = p.parse_args(argv)
    {"outlet": _outlet_main, "mne-cpu": _mne_cpu_main, "duygu-latency": _duygu_latency_main,
     "mne-latency": _mne_latency_main}[args.mode](args)


if __name__ == "__main__":
    sys.path.insert(0, str(_HERE.parents[1]))  # the checkout, for the duygu reader
    main(sys.argv[1:])
