"""Audio features for music emotion analysis (the audio paper's librosa feature set).

Every file is decoded in blocks (``soundfile.blocks``), mixed down to mono (mean of the
channels), resampled to one analysis rate (:data:`ANALYSIS_SFREQ_HZ`, streaming soxr, the
resampler ``librosa.load`` uses) and cut into centred frames of :data:`N_FFT` samples
every :data:`HOP` samples, exactly as ``librosa.stft(center=True)`` would frame the whole
signal. Memory therefore depends on the block length, not on the file length.

Per frame (:data:`FRAME_FEATURE_NAMES`, 31 values): 13 MFCCs (DCT-II of the 128-band
log-mel power spectrum, dB with an absolute floor of -100 dB), 12 chroma bins (tuning
fixed at A440, each frame scaled to max 1), spectral centroid, bandwidth, flatness and
85 % roll-off, zero-crossing rate and RMS. Per clip or segment (:func:`summary_feature_names`,
63 values): mean and standard deviation of each frame feature, and the tempo.

Tempo is estimated as librosa's beat tracker does (``librosa.beat.beat_track`` calls
``librosa.feature.tempo`` on the median-aggregated onset strength): the onset envelope is
computed block by block from the same mel spectrogram and the autocorrelation tempogram is
averaged over column chunks, so a 10-minute file never holds its tempogram in memory. The
onset strength clips the mel spectrum 80 dB below its maximum; librosa takes that maximum
over the whole signal. Duygu holds up to :data:`ONSET_EXACT_S` seconds of mel frames
before it must fix that floor, so files up to that length get exactly librosa's tempo;
beyond it the floor follows the loudest frame seen so far (it can only be lower than
librosa's, which changes bins more than 80 dB below the peak and nothing else).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse

from acquisition.errors import DataError

log = logging.getLogger(__name__)

#: rate every file is resampled to before analysis
ANALYSIS_SFREQ_HZ = 22050
#: STFT frame length in samples (93 ms at 22050 Hz)
N_FFT = 2048
#: frame step in samples (23 ms at 22050 Hz)
HOP = 512
N_MELS = 128
N_MFCC = 13
#: the mel dB floor below the spectrum's maximum used by the onset strength (librosa's top_db)
ONSET_TOP_DB = 80.0
#: mel frames held before the onset floor is fixed (see module docstring)
ONSET_EXACT_S = 120.0
#: shortest signal a tempo is reported for
MIN_TEMPO_S = 4.0
#: shortest file analysed at all
MIN_DURATION_S = 0.1
#: a file whose peak stays below this is reported as silent
SILENCE_PEAK_DBFS = -80.0
#: frames processed together (bounds the temporary arrays: ~12 s of audio)
FRAME_BATCH = 512
#: seconds of native-rate audio decoded at once
READ_BLOCK_S = 4.0
#: length of the tempogram window, as librosa.feature.tempo (ac_size=8 s)
TEMPO_AC_SIZE_S = 8.0

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FRAME_FEATURE_NAMES: tuple[str, ...] = (
    *(f"mfcc_{i:02d}" for i in range(1, N_MFCC + 1)),
    *(f"chroma_{p}" for p in PITCH_CLASSES),
    "spectral_centroid_hz",
    "spectral_bandwidth_hz",
    "spectral_flatness",
    "spectral_rolloff_hz",
    "zero_crossing_rate",
    "rms",
)
N_FRAME_FEATURES = len(FRAME_FEATURE_NAMES)

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def summary_feature_names() -> list[str]:
    """Names of the clip summary vector: ``<frame feature>_mean``, ``_std``, then ``tempo_bpm``."""
    names = [f"{n}_mean" for n in FRAME_FEATURE_NAMES]
    names += [f"{n}_std" for n in FRAME_FEATURE_NAMES]
    names.append("tempo_bpm")
    return names


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says (native rate and channels, full duration)."""

    path: str
    sfreq_hz: float
    n_channels: int
    n_frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sfreq_hz


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of an audio file.

    Raises
    ------
    DataError
        If the file does not exist, cannot be decoded, or holds no samples.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise DataError(f"audio file {str(p)!r} does not exist or is not a file")
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise DataError(f"{p.name}: not a readable audio file ({_one_line(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise DataError(f"{p.name}: holds no audio samples (frames={info.frames})")
    return AudioInfo(str(p), float(info.samplerate), int(info.channels), int(info.frames),
                     str(info.format), str(info.subtype))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "Error opening" in text and ":" in text:
        text = text.rsplit(":", 1)[-1].strip()
    return text or type(exc).__name__


def _window(offset_s: float, duration_s: float | None, info: AudioInfo) -> tuple[int, int]:
    if not math.isfinite(offset_s) or offset_s < 0:
        raise DataError(f"offset_s must be >= 0, got {offset_s}")
    start = round(offset_s * info.sfreq_hz)
    if start >= info.n_frames:
        raise DataError(f"offset_s={offset_s} is beyond the end of {Path(info.path).name} ({info.duration_s:.2f} s)")
    stop = info.n_frames
    if duration_s is not None:
        if not math.isfinite(duration_s) or duration_s <= 0:
            raise DataError(f"duration_s must be > 0, got {duration_s}")
        stop = min(stop, start + round(duration_s * info.sfreq_hz))
    return start, stop


def iter_mono(path: str | os.PathLike[str], *, offset_s: float = 0.0, duration_s: float | None = None,
              sfreq_hz: int = ANALYSIS_SFREQ_HZ, info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the file as mono float32 blocks at ``sfreq_hz``.

    Channels are averaged (as ``librosa.to_mono``) and the result is resampled with a
    streaming soxr "HQ" resampler, so the concatenated blocks equal ``librosa.load``'s
    signal up to floating-point rounding. Only one block of
    :data:`READ_BLOCK_S` seconds is held at a time.

    Raises
    ------
    DataError
        If the file cannot be opened or decoding fails part way.
    """
    import soundfile as sf
    import soxr

    info = info or audio_info(path)
    start, stop = _window(offset_s, duration_s, info)
    block = max(1024, round(READ_BLOCK_S * info.sfreq_hz))
    resampler = None
    if round(info.sfreq_hz) != sfreq_hz:
        resampler = soxr.ResampleStream(info.sfreq_hz, sfreq_hz, 1, dtype="float32", quality="HQ")
    name = Path(info.path).name
    try:
        blocks = sf.blocks(info.path, blocksize=block, start=start, stop=stop, dtype="float32",
                           always_2d=True, fill_value=None)
        n_read = 0
        for data in blocks:
            n_read += data.shape[0]
            mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
            last = n_read >= stop - start
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
            if mono.size:
                yield np.asarray(mono, dtype=np.float32)
        if resampler is not None and n_read < stop - start:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if tail.size:
                yield tail
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"{name}: decoding failed ({_one_line(exc)})") from None


def load_mono(path: str | os.PathLike[str], *, offset_s: float = 0.0, duration_s: float | None = None,
              sfreq_hz: int = ANALYSIS_SFREQ_HZ) -> np.ndarray:
    """The whole (or a window of the) file as one mono float32 array at ``sfreq_hz``."""
    parts = list(iter_mono(path, offset_s=offset_s, duration_s=duration_s, sfreq_hz=sfreq_hz))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@dataclass
class FrameBlock:
    """Frame features of consecutive frames: ``values`` (n, 31) float32."""

    values: np.ndarray
    first_frame: int


@dataclass
class _RunningStats:
    """Mean and variance merged block by block (Chan et al.), in float64."""

    n: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(N_FRAME_FEATURES))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(N_FRAME_FEATURES))

    def add(self, x: np.ndarray) -> None:
        nb = x.shape[0]
        if nb == 0:
            return
        xb = x.astype(np.float64)
        mb = xb.mean(axis=0)
        m2b = ((xb - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta**2 * (self.n * nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


class FrameAnalyzer:
    """Stateful frame-feature extractor fed with mono blocks at the analysis rate.

    ``push`` any number of blocks, then ``finish``; the frames equal those of
    ``librosa.stft(y, n_fft=2048, hop_length=512, center=True, pad_mode="constant")`` on the
    concatenated signal whatever the block sizes. The onset strength envelope
    (:meth:`onset_envelope`) equals ``librosa.onset.onset_strength(y=y, sr=sr,
    aggregate=np.median)`` for signals up to :data:`ONSET_EXACT_S`.

    Parameters
    ----------
    sfreq_hz : int
        Rate of the pushed blocks.
    keep_frames : bool
        Keep every frame's features (for :meth:`frames`); otherwise only running
        statistics are kept and memory does not grow with the signal.
    """

    def __init__(self, sfreq_hz: int = ANALYSIS_SFREQ_HZ, keep_frames: bool = True) -> None:
        import librosa

        self.sfreq_hz = int(sfreq_hz)
        self.keep_frames = keep_frames
        self._window = librosa.filters.get_window("hann", N_FFT, fftbins=True).astype(np.float32)
        self._mel_fb = librosa.filters.mel(sr=self.sfreq_hz, n_fft=N_FFT, n_mels=N_MELS,
                                           fmax=self.sfreq_hz / 2).astype(np.float32)
        self._chroma_fb = librosa.filters.chroma(sr=self.sfreq_hz, n_fft=N_FFT, tuning=0.0,
                                                 n_chroma=12).astype(np.float32)
        self._mel_sparse = scipy.sparse.csr_matrix(self._mel_fb)  # each band spans a few bins
        self._freqs = librosa.fft_frequencies(sr=self.sfreq_hz, n_fft=N_FFT).astype(np.float32)
        self._freqs64 = self._freqs.astype(np.float64)
        self._buf = np.zeros(N_FFT // 2, np.float32)  # centred framing: half a frame of zeros first
        self._n_samples = 0
        self._n_frames = 0
        self._peak = 0.0
        self._frames: list[np.ndarray] = []
        self._stats = _RunningStats()
        self._chroma_sum = np.zeros(12)
        self._pending_mel: list[np.ndarray] = []
        self._pending_n = 0
        self._onset_ref_db = -np.inf
        self._prev_mel_db: np.ndarray | None = None
        self._onset_raw: list[np.ndarray] = []
        self._finished = False

    @property
    def n_samples(self) -> int:
        return self._n_samples

    @property
    def peak(self) -> float:
        """Largest absolute sample value pushed so far."""
        return self._peak

    def push(self, y: np.ndarray) -> None:
        """Add mono samples; frames are computed once a batch of them is complete."""
        if self._finished:
            raise DataError("FrameAnalyzer.push after finish(): make a new analyser per signal")
        y = np.asarray(y, dtype=np.float32).ravel()
        if y.size == 0:
            return
        if not np.all(np.isfinite(y)):
            raise DataError("audio samples must be finite, got NaN or inf")
        self._peak = max(self._peak, float(np.max(np.abs(y))))
        self._n_samples += y.size
        self._buf = np.concatenate([self._buf, y])
        self._drain(final=False)

    def finish(self) -> None:
        """Flush the last frames (zero padding of half a frame, as ``center=True``)."""
        if self._finished:
            return
        self._buf = np.concatenate([self._buf, np.zeros(N_FFT // 2, np.float32)])
        self._drain(final=True)
        self._flush_onset()
        self._finished = True

    def _drain(self, final: bool) -> None:
        while self._buf.size >= N_FFT:
            available = (self._buf.size - N_FFT) // HOP + 1
            if final:
                # exactly 1 + n_samples // HOP frames in total, as librosa
                available = min(available, 1 + self._n_samples // HOP - self._n_frames)
            elif available < FRAME_BATCH:
                return
            m = min(available, FRAME_BATCH)
            if m <= 0:
                return
            self._process(self._buf[: N_FFT + (m - 1) * HOP], m)
            self._buf = self._buf[m * HOP:]
            if final and self._n_frames >= 1 + self._n_samples // HOP:
                return

    def _process(self, segment: np.ndarray, m: int) -> None:
        import librosa

        # time-major layout: one contiguous row per frame
        frames = librosa.util.frame(segment, frame_length=N_FFT, hop_length=HOP, axis=0)  # view (m, N_FFT)
        spec = scipy.fft.rfft(frames * self._window, axis=1)
        mag = np.abs(spec)
        del spec
        power = mag * mag
        mel = np.asarray(self._mel_sparse @ power.T).T
        mel_db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        mfcc = scipy.fft.dct(mel_db, type=2, norm="ortho", axis=1)[:, :N_MFCC]

        chroma = power @ self._chroma_fb.T
        cmax = chroma.max(axis=1, keepdims=True)
        chroma = chroma / np.where(cmax > np.finfo(np.float32).tiny, cmax, 1.0)

        total = mag.sum(axis=1, dtype=np.float64)
        safe_total = np.where(total > np.finfo(np.float32).tiny, total, 1.0)
        centroid = (mag @ self._freqs64) / safe_total
        second = (mag @ self._freqs64**2) / safe_total
        bandwidth = np.sqrt(np.maximum(second - centroid**2, 0.0))
        floored = np.maximum(power, np.float32(1e-10))
        flatness = np.exp(np.log(floored).mean(axis=1)) / floored.mean(axis=1)
        del floored
        cum = np.cumsum(mag, axis=1)
        rolloff = self._freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
        del cum
        negative = frames < -1e-10
        zcr = np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1) / N_FFT
        del negative
        rms = np.sqrt(np.einsum("tf,tf->t", frames, frames) / N_FFT)

        values = np.empty((m, N_FRAME_FEATURES), np.float32)
        values[:, :N_MFCC] = mfcc
        values[:, N_MFCC:N_MFCC + 12] = chroma
        values[:, N_MFCC + 12:] = np.stack([centroid, bandwidth, flatness, rolloff, zcr, rms], axis=1)
        if self.keep_frames:
            self._frames.append(values)
        self._stats.add(values)
        self._chroma_sum += chroma.sum(axis=0, dtype=np.float64)
        self._n_frames += m

        self._pending_mel.append(np.ascontiguousarray(mel_db.T))
        self._pending_n += m
        if self._pending_n * HOP / self.sfreq_hz >= ONSET_EXACT_S:
            self._flush_onset()

    def _flush_onset(self) -> None:
        if not self._pending_mel:
            return
        s = np.concatenate(self._pending_mel, axis=1)
        self._pending_mel, self._pending_n = [], 0
        last = s[:, -1].copy()
        self._onset_ref_db = max(self._onset_ref_db, float(s.max()))
        floor = np.float32(self._onset_ref_db - ONSET_TOP_DB)
        np.maximum(s, floor, out=s)
        if self._prev_mel_db is not None:
            diff = np.empty_like(s)
            diff[:, 0] = s[:, 0] - np.maximum(self._prev_mel_db, floor)
            np.subtract(s[:, 1:], s[:, :-1], out=diff[:, 1:])
        else:
            diff = s[:, 1:] - s[:, :-1]
        del s
        np.maximum(diff, 0.0, out=diff)
        self._onset_raw.extend(np.median(diff[:, a:a + FRAME_BATCH], axis=0)
                               for a in range(0, diff.shape[1], FRAME_BATCH))
        self._prev_mel_db = last

    # results ------------------------------------------------------------------------

    def _check_finished(self) -> None:
        if not self._finished:
            raise DataError("FrameAnalyzer results need finish() first")

    @property
    def n_frames(self) -> int:
        return self._n_frames

    def frames(self) -> np.ndarray:
        """All frame features, (n_frames, 31) float32 (needs ``keep_frames=True``)."""
        self._check_finished()
        if not self.keep_frames:
            raise DataError("frames() needs FrameAnalyzer(keep_frames=True)")
        if not self._frames:
            return np.zeros((0, N_FRAME_FEATURES), np.float32)
        return np.concatenate(self._frames, axis=0)

    def onset_envelope(self) -> np.ndarray:
        """Onset strength per frame, librosa's centring (3 leading zeros) and length."""
        self._check_finished()
        lead = 1 + N_FFT // (2 * HOP)
        raw = np.concatenate([np.zeros(lead, np.float32), *self._onset_raw])
        out = np.zeros(self._n_frames, np.float32)
        n = min(self._n_frames, raw.size)
        out[:n] = raw[:n]
        return out

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        self._check_finished()
        return self._stats.mean.copy(), self._stats.std

    def mean_chroma(self) -> np.ndarray:
        self._check_finished()
        return self._chroma_sum / max(self._n_frames, 1)


#: onset envelopes up to this many frames (47.5 s) take librosa's own one-pass tempogram
TEMPO_ONE_PASS_FRAMES = 2048


def tempo_bpm(onset_envelope: np.ndarray, sfreq_hz: int = ANALYSIS_SFREQ_HZ, hop_length: int = HOP,
              chunk_frames: int = 512) -> float:
    """Global tempo from an onset envelope, as ``librosa.beat.beat_track`` estimates it.

    The autocorrelation tempogram is summed over chunks of ``chunk_frames`` columns
    (envelopes up to :data:`TEMPO_ONE_PASS_FRAMES` take librosa's own single pass), then
    ``librosa.feature.tempo`` picks the prior-weighted peak. 0.0 when there is no onset
    at all (as ``beat_track`` reports for silence).
    """
    import librosa

    env = np.asarray(onset_envelope, dtype=np.float32)
    if env.ndim != 1 or env.size == 0:
        raise DataError(f"onset_envelope must be a non-empty 1-D array, got shape {env.shape}")
    if not env.any():
        return 0.0
    win = int(librosa.time_to_frames(TEMPO_AC_SIZE_S, sr=sfreq_hz, hop_length=hop_length))
    if env.size <= max(chunk_frames, TEMPO_ONE_PASS_FRAMES):
        tg = librosa.feature.tempogram(onset_envelope=env, sr=sfreq_hz, hop_length=hop_length,
                                       win_length=win)
        mean_tg = np.mean(tg, axis=-1, keepdims=True)
    else:
        n = env.size
        padded = np.pad(env, (win // 2, win // 2), mode="linear_ramp", end_values=(0, 0))
        framed = librosa.util.frame(padded, frame_length=win, hop_length=1)[:, :n]
        ac_window = librosa.filters.get_window("hann", win, fftbins=True)[:, None]
        total = np.zeros(win)
        for a in range(0, n, chunk_frames):
            ac = librosa.autocorrelate(framed[:, a:a + chunk_frames] * ac_window, axis=0)
            total += librosa.util.normalize(ac, norm=np.inf, axis=0).sum(axis=1)
        mean_tg = (total / n)[:, None]
    return float(librosa.feature.tempo(tg=mean_tg, sr=sfreq_hz, hop_length=hop_length)[0])


def estimate_key(mean_chroma: np.ndarray) -> tuple[str, str, float] | None:
    """Key and mode from a mean chroma vector (Krumhansl-Kessler profile correlation).

    Returns
    -------
    (key, mode, confidence) or None
        ``key`` like ``"A minor"``, ``mode`` ``"major"`` or ``"minor"``, and
        ``confidence`` = best correlation of the chosen mode minus the best of the other
        mode (0 = undecided). None when the chroma is flat or empty (silence, noise).
    """
    c = np.asarray(mean_chroma, dtype=np.float64)
    if c.shape != (12,) or not np.all(np.isfinite(c)) or np.ptp(c) < 1e-9:
        return None
    best: dict[str, tuple[float, int]] = {}
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        rolled = np.stack([np.roll(profile, k) for k in range(12)])
        r = np.array([np.corrcoef(c, p)[0, 1] for p in rolled])
        k = int(np.argmax(r))
        best[mode] = (float(r[k]), k)
    mode = "major" if best["major"][0] >= best["minor"][0] else "minor"
    other = "minor" if mode == "major" else "major"
    return f"{PITCH_CLASSES[best[mode][1]]} {mode}", mode, best[mode][0] - best[other][0]


def summarise(frames: np.ndarray, onset_envelope: np.ndarray, sfreq_hz: int = ANALYSIS_SFREQ_HZ) -> np.ndarray:
    """The 63-value summary (means, stds, tempo) of a run of frames.

    Tempo is NaN when the run is shorter than :data:`MIN_TEMPO_S`.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != N_FRAME_FEATURES or frames.shape[0] == 0:
        raise DataError(f"frames must have shape (n >= 1, {N_FRAME_FEATURES}), got {frames.shape}")
    duration_s = (frames.shape[0] + 1) * HOP / sfreq_hz  # one frame of slack for rounding
    tempo = tempo_bpm(onset_envelope, sfreq_hz) if duration_s >= MIN_TEMPO_S else math.nan
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0), [tempo]])


@dataclass
class FrameFeatures:
    """The frame features of one file (or of a window of it)."""

    info: AudioInfo
    frames: np.ndarray
    onset_envelope: np.ndarray
    sfreq_hz: int = ANALYSIS_SFREQ_HZ
    peak: float = 0.0

    @property
    def frame_rate_hz(self) -> float:
        return self.sfreq_hz / HOP

    @property
    def duration_s(self) -> float:
        return self.frames.shape[0] / self.frame_rate_hz

    def segment_bounds(self, segment_s: float, hop_s: float) -> list[tuple[int, int]]:
        """Frame ranges of segments of ``segment_s`` every ``hop_s`` (the last one whole).

        A file shorter than one segment gives one segment: the whole file.
        """
        if not (segment_s > 0 and hop_s > 0):
            raise DataError(f"segment_s and hop_s must be > 0, got {segment_s} and {hop_s}")
        n = self.frames.shape[0]
        seg = max(1, round(segment_s * self.frame_rate_hz))
        step = max(1, round(hop_s * self.frame_rate_hz))
        if n <= seg:
            return [(0, n)]
        return [(a, a + seg) for a in range(0, n - seg + 1, step)]

    def segment_summaries(self, segment_s: float, hop_s: float) -> np.ndarray:
        """(n_segments, 63) summaries of the segments of :meth:`segment_bounds`."""
        return np.stack([summarise(self.frames[a:b], self.onset_envelope[a:b], self.sfreq_hz)
                         for a, b in self.segment_bounds(segment_s, hop_s)])


def extract_frames(path: str | os.PathLike[str], *, offset_s: float = 0.0,
                   duration_s: float | None = None) -> FrameFeatures:
    """Decode a file in blocks and return every frame's features and the onset envelope.

    Raises
    ------
    DataError
        Unreadable, empty or too short (< :data:`MIN_DURATION_S`) files.
    """
    info = audio_info(path)
    analyzer = _run(path, info, offset_s, duration_s, keep_frames=True)
    return FrameFeatures(info, analyzer.frames(), analyzer.onset_envelope(), analyzer.sfreq_hz,
                         analyzer.peak)


def _run(path: str | os.PathLike[str], info: AudioInfo, offset_s: float, duration_s: float | None,
         keep_frames: bool) -> FrameAnalyzer:
    analyzer = FrameAnalyzer(ANALYSIS_SFREQ_HZ, keep_frames=keep_frames)
    name = Path(info.path).name
    try:
        for block in iter_mono(path, offset_s=offset_s, duration_s=duration_s, info=info):
            analyzer.push(block)
    except DataError as exc:
        text = str(exc)
        raise DataError(text if text.startswith(name) else f"{name}: {text}") from None
    analyzer.finish()
    seconds = analyzer.n_samples / analyzer.sfreq_hz
    if seconds < MIN_DURATION_S:
        raise DataError(f"{name}: too short to analyse ({seconds:.3f} s < {MIN_DURATION_S} s)")
    return analyzer


def analyse_file(path: str | os.PathLike[str], *, offset_s: float = 0.0, duration_s: float | None = None,
                 estimate_mode: bool = True) -> dict[str, Any]:
    """Clip summary of one file, with memory bounded whatever its length.

    Returns
    -------
    dict
        ``path``, ``duration_s`` (analysed seconds), ``sfreq_hz`` and ``n_channels``
        (native), ``analysis_sfreq_hz``, ``warnings`` (list of one-line texts: silent,
        too short for tempo), ``tempo_bpm`` (None when shorter than
        :data:`MIN_TEMPO_S`; 0.0 when there is no onset), ``key``, ``mode`` and
        ``mode_confidence`` (None when not estimated or undecidable), and every name of
        :func:`summary_feature_names` except ``tempo_bpm`` (float). Convenience aliases
        for a stimulus table: ``energy_rms`` (= ``rms_mean``) and ``brightness_hz``
        (= ``spectral_centroid_hz_mean``).

    Raises
    ------
    DataError
        Unreadable, empty or too short files.
    """
    info = audio_info(path)
    analyzer = _run(path, info, offset_s, duration_s, keep_frames=False)
    seconds = analyzer.n_samples / analyzer.sfreq_hz
    mean, std = analyzer.mean_std()
    warnings: list[str] = []
    peak_dbfs = 20 * math.log10(analyzer.peak) if analyzer.peak > 0 else -math.inf
    silent = peak_dbfs < SILENCE_PEAK_DBFS
    if silent:
        level = "digital silence" if analyzer.peak == 0 else f"peak {peak_dbfs:.0f} dBFS"
        warnings.append(f"silent: {level}, below {SILENCE_PEAK_DBFS:.0f} dBFS; features describe silence")
    tempo: float | None
    if seconds < MIN_TEMPO_S:
        tempo = None
        warnings.append(f"too short for tempo: {seconds:.2f} s < {MIN_TEMPO_S:.0f} s; tempo_bpm is null")
    else:
        tempo = tempo_bpm(analyzer.onset_envelope(), analyzer.sfreq_hz)
    record: dict[str, Any] = {
        "path": str(path),
        "duration_s": round(seconds, 6),
        "sfreq_hz": info.sfreq_hz,
        "n_channels": info.n_channels,
        "analysis_sfreq_hz": analyzer.sfreq_hz,
        "warnings": warnings,
        "tempo_bpm": tempo,
        "key": None,
        "mode": None,
        "mode_confidence": None,
    }
    if estimate_mode and not silent:
        key = estimate_key(analyzer.mean_chroma())
        if key is not None:
            record["key"], record["mode"], record["mode_confidence"] = key[0], key[1], round(key[2], 4)
    for i, name in enumerate(FRAME_FEATURE_NAMES):
        record[f"{name}_mean"] = float(mean[i])
        record[f"{name}_std"] = float(std[i])
    record["energy_rms"] = record["rms_mean"]
    record["brightness_hz"] = record["spectral_centroid_hz_mean"]
    return record


def list_files(path: str | os.PathLike[str]) -> list[Path]:
    """A file, or every non-hidden file under a folder (recursive, sorted).

    Non-audio files are listed too, so a batch reports them instead of hiding them.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(f"path {str(p)!r} is neither a file nor a folder")
    files = sorted(f for f in p.rglob("*")
                   if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts))
    if not files:
        raise DataError(f"folder {str(p)!r} holds no files")
    return files


def analyse_files(paths: Iterable[str | os.PathLike[str]], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`analyse_file` over many files; a file that fails gives ``{"path", "error"}``."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            records.append(analyse_file(path, **kwargs))
        except DataError as exc:
            log.warning("%s", exc)
            records.append({"path": str(path), "error": str(exc)})
    return records
