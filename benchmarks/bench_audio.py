"""Audio feature extraction: speed as a multiple of real time, and bounded memory.

A 10-minute stereo 44.1 kHz piece (chords, a beat and noise; 1 minute with ``quick``)
is synthesised into a temporary folder as WAV and as Ogg Vorbis. Each measurement runs
:func:`processing.audio.analyse_file` in a fresh subprocess limited to one thread
(OMP/BLAS thread variables set to 1), after a warm-up on a short file so imports and
JIT caches are not timed. Memory is measured in separate runs: the tracemalloc peak of
the analysis (numpy allocations included) and the process's peak RSS; the ratio of the
10-minute peak to the peak for the first 2.5 minutes (longer than the 120 s of mel frames
held for an exact onset floor) shows that memory does not grow with the file length.

The peer is librosa itself: the same features computed with the librosa calls made
directly on the whole file (``librosa.load`` at 22050 Hz mono, ``stft`` 2048/512 centred,
``melspectrogram`` + ``power_to_db`` + ``mfcc`` 13, ``chroma_stft`` at A440,
``spectral_centroid``/``bandwidth``/``flatness``/``rolloff``, ``zero_crossing_rate``,
``rms``, ``onset_strength`` and ``feature.tempo``, then the mean and standard deviation of
each), timed and measured in the same kind of subprocess on the same file in the same run.
The ratios are duygu / librosa: time (target <= 1.2x) and tracemalloc peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SFREQ_HZ = 44100
FULL_S = 600.0
QUICK_S = 60.0
SHORT_S = 150.0  # longer than processing.audio.ONSET_EXACT_S


def synthesise(path: Path, duration_s: float, fmt: str = "WAV", seed: int = 0) -> Path:
    """Write a stereo test piece block by block (memory stays small for long files)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    block_s = 10.0
    chords = ([57, 60, 64], [50, 53, 57], [52, 56, 59], [57, 60, 64])
    subtype = "PCM_16" if fmt == "WAV" else "VORBIS"
    with sf.SoundFile(str(path), "w", SFREQ_HZ, 2, subtype=subtype, format=fmt) as f:
        for b in range(int(np.ceil(duration_s / block_s))):
            n = int(min(block_s, duration_s - b * block_s) * SFREQ_HZ)
            t = b * block_s + np.arange(n) / SFREQ_HZ
            freqs = 440.0 * 2 ** ((np.array(chords[b % 4]) - 69) / 12)
            tone = np.sin(2 * np.pi * freqs[:, None] * t[None, :]).sum(axis=0) / 6
            beat = np.exp(-10.0 * ((t * 2.0) % 1.0))  # 120 bpm
            left = tone * (0.4 + 0.6 * beat) + 0.02 * rng.standard_normal(n)
            right = 0.8 * tone * (0.4 + 0.6 * beat) + 0.02 * rng.standard_normal(n)
            f.write(np.stack([left, right], axis=1).astype(np.float32))
    return path


def _worker(path: str, mode: str, warm: str) -> dict[str, Any]:
    import resource
    import time
    import tracemalloc

    from processing import audio

    analyse = _librosa_features if mode.startswith("librosa") else audio.analyse_file
    analyse(warm)
    out: dict[str, Any] = {}
    if mode.startswith("librosa"):
        if mode == "librosa-time":
            t0 = time.perf_counter()
            rec = analyse(path)
            out["elapsed_s"] = time.perf_counter() - t0
        else:
            tracemalloc.start()
            rec = analyse(path)
            out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        out["duration_s"] = rec["duration_s"]
    elif mode == "time":
        t0 = time.perf_counter()
        rec = audio.analyse_file(path)
        out["elapsed_s"] = time.perf_counter() - t0
        out["duration_s"] = rec["duration_s"]
        out["tempo_bpm"] = rec["tempo_bpm"]
    else:
        tracemalloc.start()
        rec = audio.analyse_file(path)
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out["duration_s"] = rec["duration_s"]
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _librosa_features(path: str) -> dict[str, Any]:
    """The peer: Duygu's audio feature set made with librosa's own calls on the whole file."""
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    spec = np.abs(librosa.stft(y, n_fft=2048, hop_length=512, center=True, pad_mode="constant"))
    power = spec**2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=128), ref=1.0,
                                 top_db=None, amin=1e-10)
    feats = [
        librosa.feature.mfcc(S=mel_db, n_mfcc=13),
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        librosa.feature.spectral_centroid(S=spec, sr=sr),
        librosa.feature.spectral_bandwidth(S=spec, sr=sr),
        librosa.feature.spectral_flatness(S=spec, power=2.0),
        librosa.feature.spectral_rolloff(S=spec, sr=sr, roll_percent=0.85),
        librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512, center=True),
        librosa.feature.rms(y=y, frame_length=2048, hop_length=512, center=True, pad_mode="constant"),
    ]
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=512)
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=512))[0])
    frames = np.concatenate(feats, axis=0)
    return {"duration_s": len(y) / sr, "mean": frames.mean(axis=1).tolist(), "std": frames.std(axis=1).tolist(),
            "tempo_bpm": tempo}


def _run_worker(path: Path, mode: str, warm: Path) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(path), mode, str(warm)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict[str, Any]]:
    duration_s = QUICK_S if quick else FULL_S
    minutes = duration_s / 60
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="duygu-bench-audio-") as tmp:
        d = Path(tmp)
        warm = synthesise(d / "warm.wav", 5.0)
        wav = synthesise(d / "long.wav", duration_s)
        ogg = synthesise(d / "long.ogg", duration_s, fmt="OGG")
        short = synthesise(d / "short.wav", min(SHORT_S, duration_s))
        for path, label in ((wav, "WAV"), (ogg, "Ogg Vorbis")):
            res = _run_worker(path, "time", warm)
            speed = res["duration_s"] / res["elapsed_s"]
            rows.append({"name": f"audio features, {minutes:g}-min {label} 44.1 kHz stereo, one thread",
                         "value": speed, "unit": "x real time", "target": ">= 50x", "ok": speed >= 50})
            peer = _run_worker(path, "librosa-time", warm)
            ratio = res["elapsed_s"] / peer["elapsed_s"]
            rows.append({"name": f"audio features time, {minutes:g}-min {label} (duygu music features): duygu/librosa",
                         "value": ratio, "unit": "x", "target": "<= 1.2x", "ok": bool(ratio <= 1.2),
                         "duygu": res["elapsed_s"], "peer": peer["elapsed_s"], "peer_name": "librosa",
                         "measure_unit": "s"})
        long_mem = _run_worker(wav, "memory", warm)
        peer_mem = _run_worker(wav, "librosa-memory", warm)
        ratio = long_mem["tracemalloc_peak_mb"] / peer_mem["tracemalloc_peak_mb"]
        rows.append({"name": f"audio memory, {minutes:g}-min WAV, tracemalloc peak: duygu/librosa", "value": ratio,
                     "unit": "x", "target": "bounded (see the length ratio)", "ok": None,
                     "duygu": long_mem["tracemalloc_peak_mb"], "peer": peer_mem["tracemalloc_peak_mb"],
                     "peer_name": "librosa", "measure_unit": "MB"})
        short_mem = _run_worker(short, "memory", warm)
        rows.append({"name": f"audio features, {minutes:g}-min WAV: tracemalloc peak", "value": long_mem["tracemalloc_peak_mb"],
                     "unit": "MB", "target": None, "ok": None})
        rows.append({"name": f"audio features, {minutes:g}-min WAV: process peak RSS", "value": long_mem["maxrss_mb"],
                     "unit": "MB", "target": None, "ok": None})
        ratio = long_mem["tracemalloc_peak_mb"] / short_mem["tracemalloc_peak_mb"]
        rows.append({"name": f"audio memory: peak for {minutes:g} min / peak for {min(SHORT_S, duration_s) / 60:g} min",
                     "value": ratio, "unit": "x", "target": "<= 1.5x", "ok": ratio <= 1.5})
    return rows


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1], sys.argv[2], sys.argv[3])))
