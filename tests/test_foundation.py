"""Unit tests of the committed foundation: ring buffer, resampler, simulator, channels,
source specs, settings, the CLI entry point, BaseSource's loss/reconnect machinery and
the layer contract (the engine imports no Qt, pyqtgraph or sounddevice)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from acquisition import __version__
from acquisition.channels import (
    ASYMMETRY_PAIRS,
    EPOC_CHANNELS,
    MONTAGE,
    SFREQ_HZ,
    canonical_label,
    match_channels,
    missing_channels,
)
from acquisition.errors import DataError, DuyguError, SourceError
from acquisition.ringbuffer import Gap, RingBuffer
from acquisition.settings import load_settings
from acquisition.sources.base import (
    BaseSource,
    DeviceInfo,
    ReadResult,
    SourceStatus,
    local_clock,
)
from acquisition.sources.resample import StreamResampler, resample_offline
from acquisition.sources.simulated import EMOTIONS, EpocSimulator, SimulatedEpocSource
from acquisition.sources.spec import SourceSpec, open_source, parse_source_spec
from tests.support.sources import PausableSource, drift_samples

ROOT = Path(__file__).resolve().parents[1]
CH = list(EPOC_CHANNELS)


# -- channels ----------------------------------------------------------------------------
def test_epoc_montage() -> None:
    assert EPOC_CHANNELS == ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1",
                             "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")  # fmt: skip
    assert SFREQ_HZ == 128.0
    assert set(MONTAGE) == set(EPOC_CHANNELS)
    for name, e in MONTAGE.items():
        assert np.hypot(np.hypot(e.x_m, e.y_m), e.z_m) == pytest.approx(0.095)
        assert (e.x_m < 0) == (name[-1] in "1357"), name  # odd numbers on the left
    assert MONTAGE["AF3"].y_m > 0 > MONTAGE["O1"].y_m  # nose is +y
    for left, right in ASYMMETRY_PAIRS:
        assert MONTAGE[left].x_m == pytest.approx(-MONTAGE[right].x_m)


def test_channel_labels_are_matched_by_name() -> None:
    assert canonical_label(" eeg af3 ") == "AF3"
    assert canonical_label("EEG O1-REF") == "O1"
    assert canonical_label("P") == "P7" and canonical_label("T3") == "T7"
    assert canonical_label("Fp1") is None and canonical_label("class") is None
    labels = ["Timestamp", "Counter", "Interpolate", *reversed(CH), "HardwareMarker"]
    idx = match_channels(labels)
    assert idx is not None and [labels[i] for i in idx] == CH
    assert match_channels(labels[:-3]) is None
    assert missing_channels(["AF3", "F7"]) == CH[2:]


# -- ring buffer --------------------------------------------------------------------------
def _ramp(first: int, n: int, n_ch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(first, first + n, dtype=np.float64)
    return np.repeat(idx[:, None], n_ch, axis=1) + np.arange(n_ch) * 0.1, idx / 128.0


def test_ringbuffer_wraps_and_returns_copies() -> None:
    buf = RingBuffer(3, 10, 128.0)
    assert buf.push(*_ramp(0, 7)) == 0
    assert buf.push(*_ramp(7, 7)) == 7
    assert buf.total == 14
    latest = buf.latest(n_samples=10)
    assert latest.first_index == 4 and latest.next_index == 14 and latest.missed == 0
    np.testing.assert_array_equal(latest.data, _ramp(4, 10)[0])
    np.testing.assert_array_equal(latest.timestamps, _ramp(4, 10)[1])
    assert len(buf.latest(n_samples=100)) == 10
    assert len(buf.latest(seconds=3 / 128)) == 3
    since = buf.since(9)
    np.testing.assert_array_equal(since.data, _ramp(9, 5)[0])
    assert len(buf.since(14)) == 0 and buf.since(14).first_index == 14
    assert len(buf.since(5, max_samples=2)) == 2
    since.data[:] = -1.0
    latest.timestamps[:] = -1.0
    np.testing.assert_array_equal(buf.since(9).data, _ramp(9, 5)[0])
    np.testing.assert_array_equal(buf.latest(n_samples=10).timestamps, _ramp(4, 10)[1])
    assert buf.overruns == 0


def test_ringbuffer_counts_overruns_exactly_and_never_grows() -> None:
    buf = RingBuffer(3, 10, 128.0)
    before = (buf._data.shape, buf._times.shape)
    for k in range(20):
        buf.push(*_ramp(7 * k, 7))
    assert (buf._data.shape, buf._times.shape) == before
    assert buf.total == 140
    late = buf.since(100)
    assert late.missed == 30 and late.first_index == 130
    np.testing.assert_array_equal(late.data, _ramp(130, 10)[0])
    later = buf.since(0)
    assert later.missed == 130
    assert buf.overruns == 2 and buf.missed == 160


def test_ringbuffer_push_larger_than_capacity_keeps_the_newest() -> None:
    buf = RingBuffer(3, 10, 128.0)
    buf.push(*_ramp(0, 4))
    assert buf.push(*_ramp(4, 25)) == 4
    assert buf.total == 29
    chunk = buf.since(0)
    assert chunk.missed == 19 and chunk.first_index == 19
    np.testing.assert_array_equal(chunk.data, _ramp(19, 10)[0])
    np.testing.assert_array_equal(chunk.timestamps, _ramp(19, 10)[1])


def test_ringbuffer_rejects_bad_chunks() -> None:
    buf = RingBuffer(3, 10, 128.0)
    with pytest.raises(DataError, match=r"shape \(n, 3\), got \(4, 2\)"):
        buf.push(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(DataError, match="4 samples but 3 timestamps"):
        buf.push(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        RingBuffer(3, 0, 128.0)
    with pytest.raises(ValueError, match="seconds or n_samples"):
        buf.latest()
    assert buf.total == 0
    assert buf.wait_for(0, 0.01) is False


@pytest.mark.timeout(120)
def test_ringbuffer_threaded_writer_and_reader_agree() -> None:
    buf = RingBuffer(3, 64, 128.0)
    n_total = 20000
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40, 2000)
    sizes = sizes[np.cumsum(sizes) <= n_total]
    n_pushed = int(sizes.sum())

    def writer() -> None:
        first = 0
        for n in sizes:
            buf.push(*_ramp(first, int(n)))
            first += int(n)

    thread = threading.Thread(target=writer)
    thread.start()
    cursor, received, missed = 0, 0, 0
    while cursor < n_pushed:
        assert buf.wait_for(cursor, 60), "writer stalled"
        chunk = buf.since(cursor)
        assert chunk.first_index == cursor + chunk.missed
        expected_data, expected_t = _ramp(chunk.first_index, len(chunk))
        np.testing.assert_array_equal(chunk.data, expected_data)  # never torn, never shifted
        np.testing.assert_array_equal(chunk.timestamps, expected_t)
        received += len(chunk)
        missed += chunk.missed
        cursor = chunk.next_index
    thread.join(10)
    assert received + missed == n_pushed
    assert buf.missed == missed
    assert (buf.overruns > 0) == (missed > 0)


# -- resampler ---------------------------------------------------------------------------
@pytest.mark.parametrize("in_hz", [256.0, 250.0, 500.0])
def test_resampler_chunked_equals_at_once(in_hz: float) -> None:
    rng = np.random.default_rng(int(in_hz))
    n = int(in_hz * 8)
    x = 4200 + 30 * rng.standard_normal((n, 4))
    t = 1000.0 + np.arange(n) / in_hz
    once, t_once = StreamResampler(in_hz, 128.0, 4).process(x, t)
    r = StreamResampler(in_hz, 128.0, 4)
    parts, t_parts, i = [], [], 0
    while i < n:
        k = int(rng.integers(0, 60))  # empty chunks too
        y, ty = r.process(x[i:i + k], t[i:i + k])
        parts.append(y)
        t_parts.append(ty)
        i += k
    chunked, t_chunked = np.concatenate(parts), np.concatenate(t_parts)
    assert len(chunked) == len(once) > 0.95 * n * 128 / in_hz
    np.testing.assert_allclose(chunked, once, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t_chunked, t_once, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.diff(t_once), 1 / 128.0, rtol=1e-6)
    assert t_once[0] == pytest.approx(t[0])  # no group delay in the timestamps
    r.reset()
    again, _ = r.process(x, t)
    np.testing.assert_allclose(again, once, atol=1e-9)


@pytest.mark.parametrize("in_hz", [256.0, 250.0, 500.0])
def test_resampler_preserves_ramp_and_sine(in_hz: float) -> None:
    n = int(in_hz * 6)
    i = np.arange(n)
    t = i / in_hz
    x = np.c_[4200 + 0.5 * i, 50 * np.sin(2 * np.pi * 10 * t + 0.3)]
    y, ty = StreamResampler(in_hz, 128.0, 2).process(x, t)
    pos = ty * in_hz
    assert np.abs(y[:, 0] - (4200 + 0.5 * pos)).max() < 0.5  # no DC transient at the start
    warm = 64
    np.testing.assert_allclose(y[warm:, 0], 4200 + 0.5 * pos[warm:], atol=1e-3)
    np.testing.assert_allclose(y[warm:, 1], 50 * np.sin(2 * np.pi * 10 * ty[warm:] + 0.3), atol=0.1)


@pytest.mark.parametrize("in_hz", [256.0, 250.0, 500.0, 160.0])
def test_offline_resampling_gives_the_live_samples(in_hz: float) -> None:
    """One resampler: a recording resampled whole (replay of files and stored sessions)
    equals the same samples streamed in random chunks and flushed at the end."""
    rng = np.random.default_rng(7)
    n = int(in_hz * 5) + 3
    x = 4200 + 30 * rng.standard_normal((n, 3))
    t = np.arange(n) / in_hz
    offline = resample_offline(x, in_hz, 128.0)
    r = StreamResampler(in_hz, 128.0, 3)
    parts, i = [], 0
    while i < n:
        k = int(rng.integers(1, 90))
        parts.append(r.process(x[i:i + k], t[i:i + k])[0])
        i += k
    parts.append(r.flush()[0])
    live = np.concatenate(parts)
    np.testing.assert_allclose(live, offline, rtol=0, atol=1e-9)
    # every output whose centre lies on a real input sample, no invented tail
    assert len(offline) == (n - 1) * r.up // r.down + 1
    assert np.abs(offline[-8:] - x[-1]).max() < 150  # the tail holds the last value, no ringing to 0


def test_resampler_same_rate_is_identity() -> None:
    x = np.random.default_rng(1).standard_normal((100, 2))
    t = np.arange(100) / 128.0
    y, ty = StreamResampler(128.0, 128.0, 2).process(x, t)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ty, t)


# -- simulator ----------------------------------------------------------------------------
def _psd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return welch(x - x.mean(axis=0), fs=SFREQ_HZ, nperseg=256, axis=0)


def _band(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return p[(f >= lo) & (f < hi)].mean(axis=0)


def test_simulator_is_deterministic_and_chunking_independent() -> None:
    a = EpocSimulator(3).generate(1000)
    b = EpocSimulator(3)
    rng = np.random.default_rng(5)
    parts, total = [], 0
    while total < 1000:
        k = min(int(rng.integers(1, 70)), 1000 - total)
        parts.append(b.generate(k))
        total += k
    np.testing.assert_array_equal(np.concatenate(parts), a)
    assert not np.allclose(EpocSimulator(4).generate(1000), a)
    assert a.shape == (1000, 14)


def test_simulator_state_sequence_is_reproducible() -> None:
    def run() -> np.ndarray:
        sim = EpocSimulator(9)
        out = [sim.generate(300)]
        sim.set_state("tense")
        out.append(sim.generate(500))
        sim.set_state("relaxing")
        out.append(sim.generate(200))
        return np.concatenate(out)

    np.testing.assert_array_equal(run(), run())
    with pytest.raises(ValueError, match="state must be one of"):
        EpocSimulator(0).set_state("angry")


def test_simulator_signal_model() -> None:
    x = EpocSimulator(1).generate(int(SFREQ_HZ * 60))
    median = np.median(x, axis=0)
    assert np.all(np.abs(median - 4200) < 300)  # the EPOC's DC offset
    f, p = _psd(x)
    alpha = _band(f, p, 8, 12)
    frontal = [CH.index(c) for c in ("AF3", "F3", "F4", "AF4", "F7", "F8")]
    assert min(alpha[CH.index("O1")], alpha[CH.index("O2")]) > 3 * alpha[frontal].max()
    line = p[f == 50.0][0]
    assert np.all(line > 5 * _band(f, p, 46, 49))  # 50 Hz mains on every channel
    low = _band(f, p, 0.5, 3)
    assert min(low[CH.index("AF3")], low[CH.index("AF4")]) > 5 * low[CH.index("O1")]  # blinks


def _state_features(state: str) -> tuple[float, float]:
    # the textbook participant: the shared pattern alone (no trial offsets, drift or
    # idiosyncrasy), at strength 1
    sim = EpocSimulator(2, strength=1.0, variability=0.0, artefacts=False)
    sim.set_state(state)
    f, p = _psd(sim.generate(int(SFREQ_HZ * 40)))
    alpha, beta = _band(f, p, 8, 12), _band(f, p, 13, 30)
    beta_alpha = float(np.log(beta.mean() / alpha.mean()))
    faa = float(np.mean([np.log(alpha[CH.index(r)]) - np.log(alpha[CH.index(left)])
                         for left, r in ASYMMETRY_PAIRS]))
    return beta_alpha, faa


def test_emotion_model_shifts_band_powers_as_documented() -> None:
    feats = {state: _state_features(state) for state in EMOTIONS}
    # arousal raises the beta/alpha ratio
    for high in ("happy", "tense"):
        for low in ("sad", "relaxing", "neutral"):
            assert feats[high][0] > feats[low][0] + 0.3, (high, low, feats)
    # positive valence: less left-frontal alpha, i.e. ln(right) - ln(left) alpha rises
    for pos in ("happy", "relaxing"):
        for neg in ("sad", "tense", "neutral"):
            assert feats[pos][1] > feats[neg][1] + 0.3, (pos, neg, feats)


@pytest.mark.timeout(180)
def test_simulated_source_streams_at_128_hz_and_reports_status() -> None:
    statuses: list[SourceStatus] = []
    source = SimulatedEpocSource(seed=5, buffer_seconds=30)
    source.add_status_listener(statuses.append)
    with source:
        assert source.buffer.wait_for(0, 60)
        # 128 Hz of wall time: over 3 s the source gains or loses under 12 samples (3 %)
        drift = drift_samples(source, span_s=3.0, window_s=1.5)
        assert source.buffer.since(source.buffer.total - 1).timestamps[-1] <= local_clock()
    assert abs(drift) < 12, f"the simulated source drifted {drift:+.1f} samples in 3 s"
    chunk = source.buffer.since(0)
    np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / SFREQ_HZ, rtol=1e-6)
    np.testing.assert_array_equal(chunk.data, EpocSimulator(5).generate(len(chunk)))
    assert statuses == [SourceStatus.CONNECTING, SourceStatus.STREAMING, SourceStatus.STOPPED]
    stats = source.stats()
    assert stats["received"] == len(chunk) and stats["lost"] == 0 and stats["status"] == "stopped"
    assert "simulation" in " ".join(source.info.notes if source.info else [])
    with pytest.raises(ValueError, match="speed must be > 0"):
        SimulatedEpocSource(speed=0)


# -- BaseSource loss, reconnect, gaps ------------------------------------------------------
@pytest.mark.timeout(300)
def test_loss_and_reconnect_keep_an_honest_gap() -> None:
    statuses: list[SourceStatus] = []
    changed_at: dict[SourceStatus, float] = {}  # stamped in the reader thread, as it happens
    source = PausableSource(loss_timeout_s=1.0, buffer_seconds=60)
    source.add_status_listener(statuses.append)
    source.add_status_listener(lambda status: changed_at.setdefault(status, time.monotonic()))
    with source:
        assert source.wait_for_samples(64, 60)
        source.pause()
        assert source.wait_for_status(SourceStatus.LOST, source.loss_timeout_s + 60.0)
        # declared loss_timeout_s after the last samples, never sooner (the reader checks
        # every 50 ms; the upper bound leaves room for a busy machine)
        silent_s = changed_at[SourceStatus.LOST] - source.last_delivery
        assert source.loss_timeout_s <= silent_s < source.loss_timeout_s + 4.0
        assert source.refused.wait(60)  # at least one reconnect attempt failed while unplugged
        n_before = source.buffer.total
        source.resume()
        assert source.wait_for_status(SourceStatus.STREAMING, 60)
        assert source.wait_for_samples(n_before + 64, 60)
    assert source.counters.reconnects == 1
    assert statuses == [SourceStatus.CONNECTING, SourceStatus.STREAMING, SourceStatus.LOST,
                        SourceStatus.CONNECTING, SourceStatus.STREAMING, SourceStatus.STOPPED]
    chunk = source.buffer.since(0)
    values = chunk.data[:, 0]
    assert np.all(chunk.data == values[:, None])
    # every sample is one the device produced, stamped with its own time: nothing invented
    np.testing.assert_allclose(chunk.timestamps - chunk.timestamps[0], (values - values[0]) / SFREQ_HZ, atol=1e-9)
    jumps = np.flatnonzero(np.diff(values) != 1)
    assert len(jumps) == 1 and np.all(np.diff(values) >= 1)
    j = int(jumps[0])
    assert len(source.gaps) == 1
    gap = source.gaps[0]
    assert isinstance(gap, Gap) and gap.reason == "device lost"
    assert gap.after_index == j
    assert gap.n_missing == int(values[j + 1] - values[j] - 1) > SFREQ_HZ * source.loss_timeout_s
    assert gap.start_time == chunk.timestamps[j] and gap.end_time == chunk.timestamps[j + 1]
    assert source.counters.received == len(chunk)
    assert source.last_error is not None and "unplugged" in source.last_error


class _LateStartSource(BaseSource):
    """Opens at once but sends nothing until ``sending`` is set (a device that starts
    streaming late), then a ramp of ``N_SAMPLES`` on every channel, 4 at a time."""

    kind = "late-start"
    N_SAMPLES = 256

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sending = threading.Event()
        self._idle = threading.Event()  # never set: a silent device blocks for the timeout
        self._next = 0

    def _open(self, timeout_s: float) -> DeviceInfo:
        return DeviceInfo(kind=self.kind, name="late-start test device", native_sfreq_hz=SFREQ_HZ)

    def _read(self, timeout_s: float) -> ReadResult | None:
        if not self.sending.wait(timeout_s) or self._next >= self.N_SAMPLES:
            self._idle.wait(timeout_s)
            return None
        idx = np.arange(self._next, self._next + 4)
        self._next += 4
        data = np.repeat(idx[:, None].astype(np.float64), len(EPOC_CHANNELS), axis=1)
        return ReadResult(data, 1000.0 + idx / SFREQ_HZ)

    def _close(self) -> None:
        return None


@pytest.mark.timeout(120)
def test_loss_before_the_first_sample_leaves_no_gap() -> None:
    # regression: the reconnect after a loss with an empty buffer used to leave
    # Gap(after_index=-1, n_missing=0, "device lost") at the second chunk that arrived
    statuses: list[SourceStatus] = []
    source = _LateStartSource(loss_timeout_s=0.2, buffer_seconds=60)
    source.add_status_listener(statuses.append)
    with source:
        assert source.wait_for_status(SourceStatus.LOST, 60)  # silent before any sample
        assert source.wait_for_status(SourceStatus.CONNECTING, 60)  # reopened by itself
        source.sending.set()
        assert source.wait_for_samples(source.N_SAMPLES, 60)
    assert statuses[:2] == [SourceStatus.CONNECTING, SourceStatus.LOST]
    assert SourceStatus.STREAMING in statuses and statuses[-1] == SourceStatus.STOPPED
    assert source.counters.reconnects >= 1
    values = source.buffer.since(0).data[:, 0]
    np.testing.assert_array_equal(values, np.arange(source.N_SAMPLES))
    assert source.gaps == [], "nothing was recorded before the loss, so nothing is missing"
    assert source.counters.lost == 0 and source.counters.received == source.N_SAMPLES


@pytest.mark.timeout(120)
def test_device_reported_drops_are_counted_and_kept_as_gaps() -> None:
    source = PausableSource(buffer_seconds=60)
    with source:
        assert source.wait_for_samples(20, 20)
        source.drop_next(7)
        n = source.buffer.total
        assert source.wait_for_samples(n + 40, 20)
    assert source.counters.lost == 7
    assert len(source.gaps) == 1 and source.gaps[0].n_missing == 7
    assert source.gaps[0].reason == "device dropped samples"
    values = source.buffer.since(0).data[:, 0]
    j = source.gaps[0].after_index
    assert values[j + 1] - values[j] == 8 and np.all(np.delete(np.diff(values), j) == 1)


@pytest.mark.timeout(120)
def test_no_reconnect_means_stopped_after_loss() -> None:
    source = PausableSource(loss_timeout_s=0.5, reconnect=False)
    with source:
        assert source.wait_for_samples(8, 20)
        source.pause()
        assert source.wait_for_status(SourceStatus.STOPPED, 20)
    assert source.counters.reconnects == 0


def test_failed_open_leaves_the_source_stopped() -> None:
    source = PausableSource()
    source.pause()
    with pytest.raises(SourceError, match="unplugged"):
        source.connect()
    assert source.status == SourceStatus.STOPPED


def test_read_result_defaults() -> None:
    res = ReadResult(np.zeros((2, 14)), np.zeros(2))
    assert res.lost == 0 and res.interpolated == 0


# -- source specs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("simulated", SourceSpec("simulated", "0")),
        ("simulated:42", SourceSpec("simulated", "42")),
        ("Simulated:-3", SourceSpec("simulated", "-3")),
        ("lsl:EmotivDataStream-EEG", SourceSpec("lsl", "EmotivDataStream-EEG")),
        ("lsl:type=EEG", SourceSpec("lsl", "type=EEG")),
        ("brainflow:-1", SourceSpec("brainflow", "-1")),
        ("brainflow:38", SourceSpec("brainflow", "38")),
        ("replay:data/rec.csv", SourceSpec("replay", "data/rec.csv", 1.0)),
        ("replay:data/rec.csv@2.5", SourceSpec("replay", "data/rec.csv", 2.5)),
        ("replay:rec.edf@10x", SourceSpec("replay", "rec.edf", 10.0)),
        ("replay:/tmp/a@b/rec.csv@4", SourceSpec("replay", "/tmp/a@b/rec.csv", 4.0)),
        ("replay:/tmp/a@b/rec.csv", SourceSpec("replay", "/tmp/a@b/rec.csv", 1.0)),
        ("replay:store.sqlite#3@50", SourceSpec("replay", "store.sqlite#3", 50.0)),
        ("  simulated:1 ", SourceSpec("simulated", "1")),
    ],
)
def test_parse_source_spec(spec: str, expected: SourceSpec) -> None:
    parsed = parse_source_spec(spec)
    assert parsed == expected
    assert parse_source_spec(str(parsed)) == parsed  # str() is a spec again


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "unknown source spec ''"),
        ("emotiv", "unknown source spec 'emotiv'"),
        ("lsl", "needs a target after 'lsl:'"),
        ("lsl:", "needs a target after 'lsl:'"),
        ("replay:", "needs a target after 'replay:'"),
        ("simulated:abc", "simulated seed must be an integer, got 'abc'"),
        ("brainflow:1.5", "brainflow board must be an id or a BoardIds name, got '1.5'"),
        ("brainflow:SYNTHETIC_BOARD?port=1", "brainflow source option must be one of serial_port=..."),
        ("brainflow:-1?timeout=soon", "brainflow option timeout must be a whole number, got 'soon'"),
        ("replay:x.csv@fast", "replay speed must be a number, got 'fast'"),
        ("replay:x.csv@0", "replay speed must be > 0 and finite, got '0'"),
        ("replay:x.csv@-2", "replay speed must be > 0 and finite, got '-2'"),
        ("replay:x.csv@nan", "replay speed must be > 0 and finite, got 'nan'"),
        ("replay:x.csv@inf", "replay speed must be > 0 and finite, got 'inf'"),
        ("replay:@2", "needs a file path after 'replay:'"),
    ],
)
def test_bad_source_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_source_spec(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_an_unknown_brainflow_board_name_is_refused_when_opened() -> None:
    with pytest.raises(SourceError, match=r"^brainflow board must be a BoardIds name or id, got 'synthetic' "):
        open_source("brainflow:synthetic")
    assert open_source("brainflow:synthetic_board").board_id == -1  # names ignore case  # type: ignore[attr-defined]


def test_open_source_builds_without_connecting(tmp_path: Path) -> None:
    sim = open_source("simulated:7", buffer_seconds=5)
    assert isinstance(sim, SimulatedEpocSource) and sim.seed == 7
    assert sim.status == SourceStatus.IDLE and sim.buffer.capacity == 5 * 128
    from acquisition.sources.replay import ReplaySource

    rep = open_source(SourceSpec("replay", str(tmp_path / "nothing.csv"), 3.0))
    assert isinstance(rep, ReplaySource) and rep.speed == 3.0
    assert rep.status == SourceStatus.IDLE  # the missing file is found at connect()
    with pytest.raises(SourceError, match="not found"):
        rep.connect()


# -- settings -----------------------------------------------------------------------------
def test_settings_defaults_point_at_the_test_dirs(tmp_path: Path) -> None:
    s = load_settings()
    assert s.default_source == "simulated" and s.loss_timeout_s == 2.0
    assert s.bandpass_hz == (1.0, 50.0)
    assert "duygu-home" in str(s.data_dir) and "duygu-home" in str(s.config_dir)
    assert s.store_path == s.data_dir / "duygu.sqlite"


def test_settings_from_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = Path(load_settings().config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "settings.toml").write_text(
        'default_source = "lsl:type=EEG"\nwindow_s = 2.0\nbandpass_hz = [0.5, 40]\nnotch_hz = 60.0\n'
    )
    s = load_settings()
    assert s.default_source == "lsl:type=EEG" and s.window_s == 2.0
    assert s.bandpass_hz == (0.5, 40) and s.notch_hz == 60.0
    monkeypatch.setenv("DUYGU_WINDOW_S", "3.5")
    monkeypatch.setenv("DUYGU_DEFAULT_SOURCE", "brainflow:-1")
    monkeypatch.setenv("DUYGU_BANDPASS_HZ", "[2, 30]")
    monkeypatch.setenv("DUYGU_STORE", str(tmp_path / "x.sqlite"))
    s = load_settings()
    assert s.window_s == 3.5 and s.default_source == "brainflow:-1" and s.bandpass_hz == (2, 30)
    assert s.notch_hz == 60.0  # the file still counts where env says nothing
    assert s.store_path == tmp_path / "x.sqlite"
    explicit = tmp_path / "other.toml"
    explicit.write_text("hop_s = 0.5\n")
    monkeypatch.setenv("DUYGU_CONFIG", str(explicit))
    assert load_settings().hop_s == 0.5


def test_settings_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("window_s = = 2\n")
    with pytest.raises(DuyguError, match="not valid TOML") as err:
        load_settings(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'red'\nwindow_s = 1.0\n")
    with pytest.raises(DuyguError, match="unknown setting"):
        load_settings(unknown)
    monkeypatch.setenv("DUYGU_WINDOW_S", "2s")
    with pytest.raises(DuyguError, match="DUYGU_WINDOW_S") as err:
        load_settings()
    assert "\n" not in str(err.value)


def test_settings_file_may_set_the_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'data_dir = "{tmp_path / "lab"}"\n')
    s = load_settings(path)
    assert s.data_dir == tmp_path / "lab"


# -- command line -------------------------------------------------------------------------
def _duygu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_cli_version() -> None:
    out = _duygu("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"duygu {__version__}"


def test_cli_help_lists_the_verbs() -> None:
    out = _duygu("--help")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: duygu")
    assert "bench" in out.stdout and "--version" in out.stdout
    bad = _duygu("no-such-verb")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


# -- layer contract -----------------------------------------------------------------------
FORBIDDEN = ("PySide6", "pyqtgraph", "sounddevice", "app")
ENGINE = ("acquisition", "processing", "models")


def engine_import_violations(root: Path) -> list[str]:
    """Every import of a forbidden module in the engine packages under ``root``."""
    found: list[tuple[str, int, str]] = []
    for package in ENGINE:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif (isinstance(node, ast.Call) and node.args
                      and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                      and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                           or (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module")))):
                    names = [node.args[0].value]
                for name in names:
                    if name.split(".")[0] in FORBIDDEN:
                        found.append((str(path.relative_to(root)), node.lineno, name))
    return [f"{file}:{line}: {name}" for file, line, name in sorted(found)]


def test_bench_finds_its_modules_by_path(tmp_path: Path) -> None:
    """``duygu bench`` runs benchmark files from a folder it is given (the app imports no
    ``benchmarks`` package); ``--only`` that matches nothing fails and lists the names."""
    (tmp_path / "bench_tiny.py").write_text(
        "def run(quick=False):\n"
        "    return [{'name': 'tiny: quick is ' + str(quick), 'value': 2.0, 'unit': 'x', 'target': None, 'ok': None}]\n")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark: never run')\n")
    out = tmp_path / "bench.json"
    ok = _duygu("bench", "--dir", str(tmp_path), "--quick", "--json", str(out))
    assert ok.returncode == 0, ok.stderr
    import json

    rows = json.loads(out.read_text())["results"]
    assert [(r["name"], r["module"]) for r in rows] == [("tiny: quick is True", "bench_tiny")]
    none = _duygu("bench", "--dir", str(tmp_path), "--only", "nothing-like-this")
    assert none.returncode == 1
    assert none.stderr.strip().splitlines() == [
        "duygu: error: --only 'nothing-like-this' matches no benchmark; the benchmarks are: bench_tiny"]
    names = _duygu("bench", "--only", "nothing-like-this").stderr  # the checkout's own benchmarks
    assert "bench_store" in names and "bench_models" in names
    assert not (ROOT / "benchmarks" / "__init__.py").exists()


def test_engine_imports_no_gui_or_audio() -> None:
    assert engine_import_violations(ROOT) == []


def test_the_import_scan_catches_a_planted_violation(tmp_path: Path) -> None:
    for package in ENGINE:
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert engine_import_violations(tmp_path) == []
    (tmp_path / "processing").mkdir(exist_ok=True)
    (tmp_path / "processing" / "planted.py").write_text(
        "import importlib\n"
        "from pyqtgraph import PlotWidget\n"
        "def play():\n"
        "    import sounddevice as sd\n"
        "    return importlib.import_module('PySide6.QtCore'), sd\n"
        "from app.cli import main\n"
    )
    violations = engine_import_violations(tmp_path)
    assert violations == [
        "processing/planted.py:2: pyqtgraph",
        "processing/planted.py:4: sounddevice",
        "processing/planted.py:5: PySide6.QtCore",
        "processing/planted.py:6: app.cli",
    ]


def test_import_linter_contracts_are_kept() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = config["contracts"]

    def forbidden_by(sources: set[str]) -> set[str]:
        return {m for c in contracts if c["type"] == "forbidden" and set(c["source_modules"]) == sources
                for m in c["forbidden_modules"]}

    assert set(FORBIDDEN) <= forbidden_by(set(ENGINE))
    assert "acquisition.session" in forbidden_by({"acquisition.sources"})
    assert "app.main_window" in forbidden_by({"app.views", "app.widgets"})
    layers = [c for c in contracts if c["type"] == "layers"]
    assert any(c["layers"] == ["acquisition.session", "acquisition.sources", "acquisition.store"] for c in layers)
    # import-linter refuses external forbidden modules (PySide6, ...) without this flag
    assert config.get("include_external_packages") is True, (
        "pyproject.toml [tool.importlinter] needs include_external_packages = true"
    )
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(contracts)} kept, 0 broken" in out.stdout


def test_views_never_name_the_main_window() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "app" / "views").rglob("*.py")
                 if "main_window" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_acquisition_keeps_only_its_shared_ground_flat() -> None:
    flat = sorted(p.name for p in (ROOT / "acquisition").glob("*.py"))
    assert flat == ["__init__.py", "channels.py", "errors.py", "ringbuffer.py", "settings.py"]
    rooms = sorted(p.name for p in (ROOT / "acquisition").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert rooms == ["session", "sources", "store"]
