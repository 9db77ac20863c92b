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

Tempo (:func:`estimate_tempo`) comes from band-wise accent envelopes computed block by block
from the same mel spectrogram (a positive log-mel flux against the previous frame widened by
one mel band, which ignores vibrato, averaged in :data:`TEMPO_BANDS` bands), their
autocorrelation, a harmonic score over the beat, two-beat and four-beat periods, a log-normal
prior around :data:`TEMPO_PRIOR_BPM` and an octave correction, within
:data:`TEMPO_MIN_BPM`--:data:`TEMPO_MAX_BPM`, with a confidence. The mel dB floor of the
onset envelopes is 80 dB below the spectrum's maximum; Duygu holds up to
:data:`ONSET_EXACT_S` seconds of mel frames before it must fix that floor (librosa takes it
over the whole signal), so files up to that length get exactly librosa's onset strength;
beyond it the floor follows the loudest frame seen so far.
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

#: tempo range a beat is reported in (a periodicity outside it is folded in by octaves)
TEMPO_MIN_BPM = 40.0
TEMPO_MAX_BPM = 220.0
#: centre and width (octaves) of the log-normal tempo prior
TEMPO_PRIOR_BPM = 120.0
TEMPO_PRIOR_OCTAVES = 1.0
#: mel-band groups of the accent envelopes (16 mel bands each)
TEMPO_BANDS = 8
#: window of the moving mean removed from each accent envelope before autocorrelation
TEMPO_DETREND_S = 1.0
#: beat multiples of the harmonic tempo score, weighted 1/k
TEMPO_HARMONICS = (1, 2, 4)
#: beat multiples whose strongest autocorrelation is the periodicity behind the confidence
#: (beat, half bar, bar and two bars of 4/4)
TEMPO_METRICAL_LEVELS = (1, 2, 4, 8)
#: an octave of the estimate is a candidate when the autocorrelation at its beat period is
#: this many noise levels (1/sqrt(N) for N envelope frames) up
TEMPO_OCTAVE_Z = 3.0
#: the strongest periodicity of the estimate's metrical levels, in noise levels, at which the
#: confidence is 0.5 and below which the tempo is not reported; signals without a pulse
#: (noise, clicks or notes at random times, 10 and 30 s) stayed below 5.7 in 149 of 150
#: simulations (the maximum over all candidate tempi of noise is far above 1/sqrt(N))
TEMPO_CONFIDENT_Z = 6.0
#: resolution of the tempo search grid, octaves
TEMPO_GRID_OCTAVES = 0.002

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


#: the tempo entries of the clip summary: the estimate whatever its confidence, and the confidence
TEMPO_FEATURE_NAMES = ("tempo_estimate_bpm", "tempo_confidence")


def summary_feature_names() -> list[str]:
    """Names of the clip summary vector: ``<frame feature>_mean``, ``_std``, then
    ``tempo_estimate_bpm`` and ``tempo_confidence`` (:data:`TEMPO_FEATURE_NAMES`)."""
    names = [f"{n}_mean" for n in FRAME_FEATURE_NAMES]
    names += [f"{n}_std" for n in FRAME_FEATURE_NAMES]
    names += TEMPO_FEATURE_NAMES
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
    aggregate=np.median)`` for signals up to :data:`ONSET_EXACT_S`; the accent envelopes
    (:meth:`accent_envelopes`) are what :func:`estimate_tempo` reads.

    Parameters
    ----------
    sfreq_hz : int
        Rate of the pushed blocks.
    keep_frames : bool
        Keep every frame's features (for :meth:`frames`); otherwise only running
        statistics are kept and memory does not grow with the signal.
    keep_mel : bool
        Keep every frame's 128-band log-mel spectrum (for :meth:`mel_db`, 22 KB per second).
    """

    def __init__(self, sfreq_hz: int = ANALYSIS_SFREQ_HZ, keep_frames: bool = True,
                 keep_mel: bool = False) -> None:
        import librosa

        self.sfreq_hz = int(sfreq_hz)
        self.keep_frames = keep_frames
        self.keep_mel = keep_mel
        self._mel_frames: list[np.ndarray] = []
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
        self._accent_raw: list[np.ndarray] = []
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
        if self.keep_mel:
            self._mel_frames.append(mel_db.astype(np.float32))
        self._stats.add(values)
        self._chroma_sum += chroma.sum(axis=0, dtype=np.float64)
        self._n_frames += m

        self._pending_mel.append(np.ascontiguousarray(mel_db.T))
        self._pending_n += m
        if self._pending_n * HOP / self.sfreq_hz >= ONSET_EXACT_S:
            self._flush_onset()

    def _flush_onset(self) -> None:
        from scipy.ndimage import maximum_filter1d

        if not self._pending_mel:
            return
        s = np.concatenate(self._pending_mel, axis=1)
        self._pending_mel, self._pending_n = [], 0
        last = s[:, -1].copy()
        self._onset_ref_db = max(self._onset_ref_db, float(s.max()))
        floor = np.float32(self._onset_ref_db - ONSET_TOP_DB)
        np.maximum(s, floor, out=s)
        n = s.shape[1]
        for a in range(0 if self._prev_mel_db is not None else 1, n, FRAME_BATCH):
            b = min(n, a + FRAME_BATCH)
            if a == 0:
                assert self._prev_mel_db is not None
                prev = np.concatenate([np.maximum(self._prev_mel_db, floor)[:, None], s[:, :b - 1]], axis=1)
            else:
                prev = s[:, a - 1:b - 1]
            cur = s[:, a:b]
            # librosa's onset strength: median over the bands of the positive flux
            self._onset_raw.append(np.median(np.maximum(cur - prev, 0.0), axis=0))
            # accents for tempo: the flux against the previous frame widened by one band
            # (vibrato moves a partial to the next band and is no onset), mean per band group
            accent = np.maximum(cur - maximum_filter1d(prev, 3, axis=0), 0.0)
            self._accent_raw.append(np.stack([band.mean(axis=0) for band in
                                              np.array_split(accent, TEMPO_BANDS, axis=0)]).astype(np.float32))
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
        raw = np.concatenate([np.zeros(0, np.float32), *self._onset_raw])
        return _centre(raw[None, :], self._n_frames)[0]

    def accent_envelopes(self) -> np.ndarray:
        """Accent envelopes for tempo, (:data:`TEMPO_BANDS`, n_frames) float32, aligned as
        :meth:`onset_envelope`."""
        self._check_finished()
        raw = np.concatenate([np.zeros((TEMPO_BANDS, 0), np.float32), *self._accent_raw], axis=1)
        return _centre(raw, self._n_frames)

    def mel_db(self) -> np.ndarray:
        """Every frame's 128-band mel power in dB (floor -100 dB), (n_frames, 128) float32
        (needs ``keep_mel=True``)."""
        self._check_finished()
        if not self.keep_mel:
            raise DataError("mel_db() needs FrameAnalyzer(keep_mel=True)")
        if not self._mel_frames:
            return np.zeros((0, N_MELS), np.float32)
        return np.concatenate(self._mel_frames, axis=0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        self._check_finished()
        return self._stats.mean.copy(), self._stats.std

    def mean_chroma(self) -> np.ndarray:
        self._check_finished()
        return self._chroma_sum / max(self._n_frames, 1)


def _centre(raw: np.ndarray, n_frames: int) -> np.ndarray:
    """Envelope rows with librosa's onset centring: 3 leading zeros, ``n_frames`` long."""
    lead = 1 + N_FFT // (2 * HOP)
    out = np.zeros((raw.shape[0], n_frames), np.float32)
    n = max(0, min(n_frames - lead, raw.shape[1]))
    out[:, lead:lead + n] = raw[:, :n]
    return out


TEMPO_OK = "ok"
TEMPO_LOW_CONFIDENCE = "low confidence"
TEMPO_NO_ONSETS = "no onsets"
TEMPO_TOO_SHORT = "too short"


@dataclass(frozen=True)
class TempoEstimate:
    """A global tempo with its confidence.

    Attributes
    ----------
    estimate_bpm : float
        The most plausible beat rate in :data:`TEMPO_MIN_BPM`--:data:`TEMPO_MAX_BPM`,
        whatever its confidence (0.0 when there are no onsets, NaN when too short).
    confidence : float
        ``z / (z + TEMPO_CONFIDENT_Z)`` in [0, 1), where ``z`` is the periodicity (the
        autocorrelation at 1, 2, 4 or 8 beats, :data:`TEMPO_METRICAL_LEVELS`, whichever is
        strongest) in noise levels ``1/sqrt(N)`` of N envelope frames.
    status : str
        :data:`TEMPO_OK`, :data:`TEMPO_LOW_CONFIDENCE` (confidence below 0.5),
        :data:`TEMPO_NO_ONSETS` or :data:`TEMPO_TOO_SHORT`.
    periodicity : float
        That autocorrelation (-1 ... 1).
    """

    estimate_bpm: float
    confidence: float
    status: str
    periodicity: float = 0.0

    @property
    def bpm(self) -> float | None:
        """The tempo to report: the estimate when the status is ``ok``, otherwise None."""
        return self.estimate_bpm if self.status == TEMPO_OK else None

    def features(self) -> tuple[float, float]:
        """The values of :data:`TEMPO_FEATURE_NAMES`."""
        return self.estimate_bpm, self.confidence


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Unbiased autocorrelation of ``x`` (rows) at lags 0..max_lag, normalised to 1 at lag 0."""
    n = x.shape[-1]
    spectrum = np.fft.rfft(x, 2 * n, axis=-1)
    r = np.fft.irfft(spectrum * np.conj(spectrum), axis=-1)[..., :max_lag + 1]
    r = r / (n - np.arange(max_lag + 1))
    return r / r[..., :1]


def estimate_tempo(accents: np.ndarray, frame_rate_hz: float = ANALYSIS_SFREQ_HZ / HOP) -> TempoEstimate:
    """Global tempo of accent envelopes (:meth:`FrameAnalyzer.accent_envelopes`).

    1. Each band's envelope minus its moving mean (:data:`TEMPO_DETREND_S`) is
       autocorrelated; the bands' autocorrelations are averaged (``r``).
    2. Every tempo of a fine grid in :data:`TEMPO_MIN_BPM`--:data:`TEMPO_MAX_BPM` gets the
       harmonic score ``sum_k r(k L) / k`` over the beat period ``L`` and its multiples
       :data:`TEMPO_HARMONICS` (a beat implies periodic bars), times a log-normal prior
       around :data:`TEMPO_PRIOR_BPM` (:data:`TEMPO_PRIOR_OCTAVES` wide); the best one
       fixes the metrical family.
    3. Octave correction: of that tempo's doublings and halvings within the range, the
       one nearest the prior's centre whose own beat period is a significant periodicity
       (``r(L) >= TEMPO_OCTAVE_Z / sqrt(N)``) is the estimate.
    4. Confidence: the strongest autocorrelation at the estimate's metrical levels
       (:data:`TEMPO_METRICAL_LEVELS`) in noise levels ``z``; below
       :data:`TEMPO_CONFIDENT_Z` the status is :data:`TEMPO_LOW_CONFIDENCE`.

    Parameters
    ----------
    accents : ndarray, shape (n_bands, n_frames) or (n_frames,)
    frame_rate_hz : float
        Envelope frames per second.

    Raises
    ------
    DataError
        If ``accents`` is empty or not finite.
    """
    from scipy.ndimage import uniform_filter1d

    env = np.atleast_2d(np.asarray(accents, dtype=np.float64))
    if env.ndim != 2 or env.shape[1] == 0 or not np.all(np.isfinite(env)):
        raise DataError(f"accents must be a finite non-empty (bands, frames) array, got shape {env.shape}")
    n = env.shape[1]
    if n < MIN_TEMPO_S * frame_rate_hz - 1:
        return TempoEstimate(math.nan, 0.0, TEMPO_TOO_SHORT)
    if not env.any():
        return TempoEstimate(0.0, 0.0, TEMPO_NO_ONSETS)
    x = env - uniform_filter1d(env, max(1, round(TEMPO_DETREND_S * frame_rate_hz)) | 1, axis=1, mode="nearest")
    x = x[np.sum(x * x, axis=1) > 1e-12 * n]
    if x.shape[0] == 0:  # onsets, but no change of their rate: a constant envelope
        return TempoEstimate(TEMPO_PRIOR_BPM, 0.0, TEMPO_LOW_CONFIDENCE)
    max_lag = n // 2  # longer lags average too few products
    r = _autocorrelation(x, max_lag).mean(axis=0)
    noise = 1.0 / math.sqrt(n)

    def at(lag: np.ndarray) -> np.ndarray:
        return np.interp(lag, np.arange(max_lag + 1), r, right=np.nan)

    grid = TEMPO_MIN_BPM * 2.0 ** np.arange(0.0, math.log2(TEMPO_MAX_BPM / TEMPO_MIN_BPM), TEMPO_GRID_OCTAVES)
    beat = 60.0 * frame_rate_hz / grid
    weighted = [(at(k * beat), 1.0 / k) for k in TEMPO_HARMONICS]
    score = (sum(np.nan_to_num(v) * w for v, w in weighted)
             / np.maximum(sum(np.isfinite(v) * w for v, w in weighted), 1e-12))

    def prior(bpm: np.ndarray | float) -> np.ndarray:
        return np.exp(-0.5 * (np.log2(np.asarray(bpm) / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)

    rank = np.maximum(score, 0.0) * prior(grid) if np.any(score > 0) else score  # no periodicity: the least bad
    best = float(grid[int(np.argmax(rank))])
    family = [best * 2.0 ** j for j in range(-3, 4) if TEMPO_MIN_BPM <= best * 2.0 ** j <= TEMPO_MAX_BPM]
    beat_r = at(60.0 * frame_rate_hz / np.asarray(family))
    significant = [t for t, v in zip(family, beat_r, strict=True) if np.isfinite(v) and v >= TEMPO_OCTAVE_Z * noise]
    tempo = max(significant, key=lambda t: float(prior(t))) if significant else best
    lags = np.array([k * 60.0 * frame_rate_hz / tempo for k in TEMPO_METRICAL_LEVELS])
    periodicity = float(np.nanmax(np.append(at(lags), -1.0)))
    z = max(periodicity, 0.0) / noise
    confidence = z / (z + TEMPO_CONFIDENT_Z)
    status = TEMPO_OK if z >= TEMPO_CONFIDENT_Z else TEMPO_LOW_CONFIDENCE
    return TempoEstimate(tempo, confidence, status, periodicity)


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


def summarise(frames: np.ndarray, accents: np.ndarray, sfreq_hz: int = ANALYSIS_SFREQ_HZ) -> np.ndarray:
    """The clip summary (:func:`summary_feature_names`: means, stds, tempo estimate and
    confidence) of a run of frames and their accent envelopes.

    The tempo estimate is NaN (and its confidence 0) when the run is shorter than
    :data:`MIN_TEMPO_S`.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != N_FRAME_FEATURES or frames.shape[0] == 0:
        raise DataError(f"frames must have shape (n >= 1, {N_FRAME_FEATURES}), got {frames.shape}")
    tempo = estimate_tempo(accents, sfreq_hz / HOP)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0), tempo.features()])


@dataclass
class FrameFeatures:
    """The frame features of one file (or of the window of it starting at ``offset_s``).

    ``frames`` (n, 31), ``onset_envelope`` (n,), ``accents`` (:data:`TEMPO_BANDS`, n) and
    ``mel_db`` (n, 128), all per frame of :data:`HOP` samples at ``sfreq_hz``.
    """

    info: AudioInfo
    frames: np.ndarray
    onset_envelope: np.ndarray
    accents: np.ndarray
    mel_db: np.ndarray
    sfreq_hz: int = ANALYSIS_SFREQ_HZ
    peak: float = 0.0
    offset_s: float = 0.0

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

    def summary(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:func:`summarise` of frames ``start:stop``."""
        return summarise(self.frames[start:stop], self.accents[:, start:stop], self.sfreq_hz)

    def tempo(self, start: int = 0, stop: int | None = None) -> TempoEstimate:
        """:func:`estimate_tempo` of frames ``start:stop``."""
        return estimate_tempo(self.accents[:, start:stop], self.frame_rate_hz)

    def segment_summaries(self, segment_s: float, hop_s: float) -> np.ndarray:
        """Summaries of the segments of :meth:`segment_bounds`, one row each."""
        return np.stack([self.summary(a, b) for a, b in self.segment_bounds(segment_s, hop_s)])


def extract_frames(path: str | os.PathLike[str], *, offset_s: float = 0.0,
                   duration_s: float | None = None) -> FrameFeatures:
    """Decode a file in blocks and return every frame's features, log-mel spectrum and
    onset and accent envelopes.

    Raises
    ------
    DataError
        Unreadable, empty or too short (< :data:`MIN_DURATION_S`) files.
    """
    info = audio_info(path)
    analyzer = _run(path, info, offset_s, duration_s, keep_frames=True)
    return FrameFeatures(info, analyzer.frames(), analyzer.onset_envelope(), analyzer.accent_envelopes(),
                         analyzer.mel_db(), analyzer.sfreq_hz, analyzer.peak, float(offset_s))


def _run(path: str | os.PathLike[str], info: AudioInfo, offset_s: float, duration_s: float | None,
         keep_frames: bool) -> FrameAnalyzer:
    analyzer = FrameAnalyzer(ANALYSIS_SFREQ_HZ, keep_frames=keep_frames, keep_mel=keep_frames)
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
        too short for tempo), ``tempo_bpm`` (the tempo when its status is ``ok``, else
        None), ``tempo_estimate_bpm`` and ``tempo_confidence`` (:class:`TempoEstimate`;
        None when shorter than :data:`MIN_TEMPO_S`), ``tempo_status``, ``key``, ``mode``
        and ``mode_confidence`` (None when not estimated or undecidable), and every other
        name of :func:`summary_feature_names` (float). Convenience aliases for a stimulus
        table: ``energy_rms`` (= ``rms_mean``) and ``brightness_hz``
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
    tempo = estimate_tempo(analyzer.accent_envelopes(), analyzer.sfreq_hz / HOP)
    if tempo.status == TEMPO_TOO_SHORT:
        warnings.append(f"too short for tempo: {seconds:.2f} s < {MIN_TEMPO_S:.0f} s; tempo_bpm is null")
    known = tempo.status != TEMPO_TOO_SHORT
    record: dict[str, Any] = {
        "path": str(path),
        "duration_s": round(seconds, 6),
        "sfreq_hz": info.sfreq_hz,
        "n_channels": info.n_channels,
        "analysis_sfreq_hz": analyzer.sfreq_hz,
        "warnings": warnings,
        "tempo_bpm": tempo.bpm,
        "tempo_estimate_bpm": tempo.estimate_bpm if known else None,
        "tempo_confidence": tempo.confidence if known else None,
        "tempo_status": tempo.status,
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
