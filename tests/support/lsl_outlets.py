"""Real LSL outlets in a separate process, for the LSL source tests.

Run as a script (``python tests/support/lsl_outlets.py emotiv --name X ...``) by
:func:`start_outlet`; the test owns the process and kills it by its pid.

``emotiv`` imitates EmotivPRO's EEG outlet: channels ``Timestamp, Counter, Interpolate,
AF3 ... AF4, HardwareMarker, Markers`` (18 without ``Markers``), float32, pushed in real
time in chunks of 4-32 samples with one timestamp per sample, sample ``k`` stamped
``t0 + k / rate``. ``AF3`` carries the sample index ``k`` (a ramp), every other EEG
channel a constant of its own (:func:`channel_constant`), ``Counter`` is ``k % rate``.
Samples in ``--skip`` are not sent (their Counter values are skipped), samples in
``--interpolate`` have ``Interpolate = 1``, samples in ``--nan`` carry NaN in ``F3``;
``--stamp-offset`` shifts every pushed stamp (a bridge stamping with Unix time).
A process restarted with the same ``--t0`` continues the ramp where the clock is.

``generic`` sends the given ``--labels`` (with ``--units``) and the same values (AF3 =
ramp, others constants), scaled to the stated unit. ``player`` replays a CSV of EPOC
channels in µV (``--rows START:STOP`` of it) through mne-lsl's ``PlayerLSL`` (in volts,
as MNE streams) after a lead-in of ``--preroll-s`` seconds of :data:`PREROLL_UV`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

EPOC = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")
EMOTIV_19 = ("Timestamp", "Counter", "Interpolate", *EPOC, "HardwareMarker", "Markers")
EMOTIV_18 = EMOTIV_19[:-1]
PREROLL_UV = -12345.0
UNIT_TO_UV = {"microvolts": 1.0, "": 1.0, "volts": 1e6, "V": 1e6, "millivolts": 1e3, "0": 1e6}


def channel_constant(epoc_position: int) -> float:
    """The constant (µV) the outlets send on EPOC channel ``epoc_position`` (1..13)."""
    return 4200.0 + 10.0 * epoc_position


def start_outlet(mode: str, *args: str) -> subprocess.Popen[bytes]:
    """Start this script as an outlet process; the caller kills it (``proc.kill()``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), mode, "--parent", str(os.getpid()), *args]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop_outlet(proc: subprocess.Popen[bytes]) -> None:
    """Kill an outlet process (by its pid) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _ints(text: str) -> set[int]:
    return {int(x) for x in text.split(",") if x.strip()} if text else set()


def _events(text: str) -> dict[int, float]:
    """``"k:v,k:v"`` -> {sample index: value} (the value holds from k for one sample)."""
    out: dict[int, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, v = part.partition(":")
        out[int(k)] = float(v)
    return out


def _parent_alive(pid: int) -> bool:
    return os.getppid() == pid


def _run_paced(args: argparse.Namespace, labels: tuple[str, ...], unit_scale: float) -> None:
    import numpy as np
    import pylsl

    info = pylsl.StreamInfo(args.name, args.type, len(labels), args.rate,
                            pylsl.cf_float32 if args.format == "float32" else pylsl.cf_double64,
                            args.source_id)
    if not args.no_labels:
        info.set_channel_labels(list(labels))
        info.set_channel_units([args.unit] * len(labels))
    outlet = pylsl.StreamOutlet(info, 32, 360)
    if args.wait_consumer > 0:
        outlet.wait_for_consumers(args.wait_consumer)
    rate = args.rate or 128.0  # an irregular stream (nominal rate 0) is still paced
    t0 = args.t0 if args.t0 else pylsl.local_clock()
    k = max(0, int(np.ceil((pylsl.local_clock() - t0) * rate))) if args.t0 else 0
    stop_k = k + round(args.seconds * rate) if args.seconds > 0 else None
    rng = np.random.default_rng(args.seed)
    skip, interp, nan = _ints(args.skip), _ints(args.interpolate), _ints(args.nan)
    hardware, markers = _events(args.hardware_at), _events(args.markers_at)
    col = {label: i for i, label in enumerate(labels)}
    consts = np.array([channel_constant(i) for i in range(len(EPOC))])
    while _parent_alive(args.parent) and (stop_k is None or k < stop_k):
        n = int(rng.integers(args.chunk_min, args.chunk_max + 1))
        if stop_k is not None:
            n = min(n, stop_k - k)
        idx = np.arange(k, k + n)
        stamps = t0 + idx / rate
        wait = stamps[-1] - pylsl.local_clock()
        if wait > 0:
            time.sleep(wait)  # pace the imitated device in real time
        block = np.zeros((n, len(labels)))
        eeg = np.repeat(consts[None, :], n, axis=0)
        eeg[:, 0] = idx
        eeg[np.isin(idx, list(nan)), 2] = np.nan
        for j, ch in enumerate(EPOC):
            if ch in col:
                block[:, col[ch]] = eeg[:, j] / unit_scale
        if "Counter" in col:
            block[:, col["Counter"]] = idx % (args.counter_modulus or int(rate))
            block[:, col["Interpolate"]] = np.isin(idx, list(interp)).astype(float)
            block[:, col["Timestamp"]] = stamps
        for label, events in (("HardwareMarker", hardware), ("Markers", markers)):
            if label in col:
                block[:, col[label]] = [events.get(int(i), 0.0) for i in idx]
        keep = ~np.isin(idx, list(skip))
        if keep.any():
            outlet.push_chunk(block[keep].tolist(), (stamps[keep] + args.stamp_offset).tolist())
        k += n
    deadline = time.monotonic() + args.linger_s
    while _parent_alive(args.parent) and time.monotonic() < deadline:
        time.sleep(0.2)  # keep the outlet visible until the test is done with it


def _run_quality(args: argparse.Namespace) -> None:
    """EmotivPRO's Contact-Quality stream: Timestamp, BatteryPercent, Overall, Signal, then
    the 14 sensors on the 0-4 scale, at 2 Hz (``--type`` picks EEG-Quality's layout)."""
    import pylsl

    third = "SampleRateQuality" if args.type == "EEG-Quality" else "Signal"
    labels = ["Timestamp", "BatteryPercent", "Overall", third, *EPOC]
    info = pylsl.StreamInfo(args.name, args.type, len(labels), 2.0, pylsl.cf_float32, args.source_id)
    info.set_channel_labels(labels)
    outlet = pylsl.StreamOutlet(info)
    sensors = [float(v) for v in args.sensors.split(",")]
    while _parent_alive(args.parent):
        now = pylsl.local_clock()
        outlet.push_sample([now, args.battery, args.overall, 1.0, *sensors], now)
        time.sleep(0.5)  # EmotivPRO's 2 Hz


def _run_player(args: argparse.Namespace) -> None:
    import mne
    import numpy as np
    from mne_lsl.player import PlayerLSL

    table = np.loadtxt(args.csv, delimiter=",", skiprows=1)
    if args.rows:
        first, _, last = args.rows.partition(":")
        table = table[int(first or 0):int(last) if last else None]
    header = Path(args.csv).read_text().splitlines()[0].split(",")
    names = ["P7" if h == "P" else h for h in header[:14]]
    data_uv = table[:, :14]
    preroll = np.full((int(args.preroll_s * 128), 14), PREROLL_UV)
    raw = mne.io.RawArray(np.vstack([preroll, data_uv]).T * 1e-6,
                          mne.create_info(names, 128.0, "eeg"), verbose="error")
    player = PlayerLSL(raw, chunk_size=args.chunk_max, n_repeat=1, name=args.name,
                       source_id=args.source_id)
    player.start()
    total_s = raw.n_times / 128.0
    deadline = time.monotonic() + total_s + args.linger_s
    while _parent_alive(args.parent) and time.monotonic() < deadline:
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=("emotiv", "generic", "player", "quality"))
    p.add_argument("--parent", type=int, required=True, help="exit when this process is gone")
    p.add_argument("--name", required=True)
    p.add_argument("--type", default="EEG")
    p.add_argument("--source-id", default="")
    p.add_argument("--rate", type=float, default=128.0)
    p.add_argument("--channels", type=int, default=19, choices=(18, 19))
    p.add_argument("--labels", default="", help="generic: comma-separated labels")
    p.add_argument("--no-labels", action="store_true")
    p.add_argument("--unit", default="microvolts")
    p.add_argument("--format", default="float32", choices=("float32", "double64"))
    p.add_argument("--seconds", type=float, default=0.0, help="0 = until killed")
    p.add_argument("--t0", type=float, default=0.0, help="LSL time of sample 0 (0 = now)")
    p.add_argument("--counter-modulus", type=int, default=0, help="Counter = k %% this (default: the rate)")
    p.add_argument("--hardware-at", default="", help="HardwareMarker value at samples: 'k:v,k:v'")
    p.add_argument("--markers-at", default="", help="Markers value at samples: 'k:v,k:v'")
    p.add_argument("--stamp-offset", type=float, default=0.0,
                   help="add this to every pushed stamp (a bridge that stamps on another clock)")
    p.add_argument("--chunk-min", type=int, default=4)
    p.add_argument("--chunk-max", type=int, default=32)
    p.add_argument("--skip", default="")
    p.add_argument("--interpolate", default="")
    p.add_argument("--nan", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wait-consumer", type=float, default=0.0)
    p.add_argument("--linger-s", type=float, default=120.0)
    p.add_argument("--sensors", default="4,4,4,4,4,4,4,4,4,4,4,4,4,4", help="quality: the 14 sensor values")
    p.add_argument("--battery", type=float, default=80.0)
    p.add_argument("--overall", type=float, default=75.0)
    p.add_argument("--csv", default="")
    p.add_argument("--rows", default="", help="player: replay only rows START:STOP of the CSV")
    p.add_argument("--preroll-s", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.mode == "player":
        _run_player(args)
        return
    if args.mode == "quality":
        _run_quality(args)
        return
    if args.mode == "emotiv":
        labels = EMOTIV_19 if args.channels == 19 else EMOTIV_18
    else:
        labels = tuple(x.strip() for x in args.labels.split(","))
    _run_paced(args, labels, UNIT_TO_UV.get(args.unit, 1.0))


if __name__ == "__main__":
    main()
