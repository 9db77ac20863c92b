"""The LSL reader's inner loop without a network: the steady-chunk path gives exactly what
the full per-sample checks give, and the read pacing (block when empty, gather when the
stream outpaces the reads) never delays a stop."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from acquisition.errors import SourceError
from acquisition.sources.base import ReadResult
from acquisition.sources.lsl import LslSource, analyse_layout

EMOTIV_19 = ["Timestamp", "Counter", "Interpolate", "AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2",
             "P8", "T8", "FC6", "F4", "F8", "AF4", "HardwareMarker", "Markers"]


def _source(steady: bool) -> LslSource:
    src = LslSource("unit-test")
    src.layout = analyse_layout("unit-test", EMOTIV_19, None, 128.0, len(EMOTIV_19))  # type: ignore[arg-type]
    src._reset_stream_state()
    if not steady:
        src._convert_steady = lambda raw, stamps: None  # type: ignore[method-assign]
    return src


def _stream(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chunks of an EmotivPRO stream with what a headset and a network do to it: skipped
    samples (one a whole Counter cycle), a repeat, NaN, interpolated samples, markers."""
    rng = np.random.default_rng(seed)
    n = 40 * 128
    k = np.arange(n)
    raw = np.zeros((n, len(EMOTIV_19)), dtype=np.float32)
    raw[:, 1] = k % 128
    raw[:, 3:17] = 4200 + rng.standard_normal((n, 14)).astype(np.float32) * 20
    raw[rng.choice(n, 40, replace=False), 2] = 1.0  # Interpolate
    raw[[700, 701, 2000], 17] = [3.0, 3.0, 5.0]  # HardwareMarker
    raw[3000, 18] = 12.0  # Markers
    raw[1500, 5] = np.nan
    stamps = 1000.0 + k / 128.0
    keep = np.ones(n, dtype=bool)
    keep[[300, 301, 302]] = False
    keep[900:1028] = False  # exactly one Counter cycle: only the time shows it
    keep[4000:4200] = False
    rows = np.flatnonzero(keep)
    rows = np.insert(rows, np.searchsorted(rows, 2500), 2499)  # a repeated sample
    chunks = []
    a = 0
    while a < len(rows):
        b = min(len(rows), a + int(rng.integers(1, 40)))
        chunks.append((raw[rows[a:b]], stamps[rows[a:b]]))
        a = b
    return chunks


def _results(src: LslSource, chunks: list[tuple[np.ndarray, np.ndarray]]) -> list[ReadResult]:
    out: list[ReadResult] = []
    for raw, stamps in chunks:
        for res in src._convert(raw, stamps.copy()):
            out.append(res)
            src._push(res, None)
    return out


@pytest.mark.timeout(30)
@pytest.mark.parametrize("seed", [0, 1])
def test_steady_path_gives_what_the_full_checks_give(seed: int) -> None:
    chunks = _stream(seed)
    fast, full = _source(True), _source(False)
    taken = []
    original = fast._convert_steady

    def counting(raw: Any, stamps: Any) -> Any:
        res = original(raw, stamps)
        taken.append(res is not None)
        return res

    fast._convert_steady = counting  # type: ignore[method-assign]
    a, b = _results(fast, chunks), _results(full, chunks)
    assert 0.5 < np.mean(taken) < 1.0, "most chunks are steady, the faulty ones are not"
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.data, y.data)
        np.testing.assert_array_equal(x.timestamps, y.timestamps)
        assert (x.lost, x.interpolated) == (y.lost, y.interpolated)
    for attr in ("native_lost", "duplicates", "invalid_samples", "_last_counter", "_counter_modulus"):
        assert getattr(fast, attr) == getattr(full, attr), attr
    assert [e.text for e in fast.buffer.events_since(0)] == [e.text for e in full.buffer.events_since(0)] \
        == ["hardware:3", "hardware:5", "emotivpro:12"]
    assert fast.native_lost == 3 + 128 + 200 + 1  # the NaN sample is dropped and counted as lost
    assert fast.duplicates == 1


class _FakeInlet:
    """Records pull_chunk calls; returns a queued chunk or nothing."""

    def __init__(self) -> None:
        self.queue: list[tuple[np.ndarray, np.ndarray]] = []
        self.calls: list[float] = []

    def pull_chunk(self, timeout: float = 0.0, max_samples: int = 1024, min_samples: int | None = None,
                   as_numpy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(timeout)
        if self.queue:
            return self.queue.pop(0)
        return np.zeros((0, len(EMOTIV_19)), dtype=np.float32), np.zeros(0)


def _chunk(k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.zeros((n, len(EMOTIV_19)), dtype=np.float32)
    raw[:, 1] = (k0 + np.arange(n)) % 128
    raw[:, 3:17] = 4200.0
    return raw, 1000.0 + (k0 + np.arange(n)) / 128.0


@pytest.mark.timeout(30)
def test_reads_block_when_empty_and_gather_when_the_stream_outpaces_them() -> None:
    src = _source(True)
    src.clock_skew_s = 0.0  # stamps checked already
    inlet = _FakeInlet()
    src._inlet = inlet
    # nothing waiting: one non-blocking look, then a blocking pull with the read's timeout
    assert src._read(0.05) is None
    assert inlet.calls == [0.0, 0.05]
    # a chunk waiting: taken without blocking, and the next read is held back a moment
    inlet.queue.append(_chunk(0, 8))
    assert src._read(0.05) is not None
    assert src._next_read > 0
    # a full pull is a backlog: the next read follows at once
    src.max_chunk_samples = 8
    inlet.queue.append(_chunk(8, 8))
    assert src._read(0.05) is not None
    assert src._next_read == 0.0
    inlet.queue.append(_chunk(16, 4))
    assert src._read(0.05) is not None
    assert src._next_read > 0
    # a stop during that moment ends the read at once, without touching the inlet
    inlet.calls.clear()
    src._stop.set()
    done = threading.Event()
    threading.Thread(target=lambda: (src._read(0.05), done.set()), daemon=True).start()
    assert done.wait(5)
    assert inlet.calls == []


def test_read_interval_is_validated() -> None:
    with pytest.raises(SourceError, match=r"min_read_interval_s must be between 0 and 0\.05 s, got 0\.5"):
        LslSource("x", min_read_interval_s=0.5)
