"""ReplaySource and load_recording: CSV, EDF/BDF, the session store, and bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import DataError, SourceError
from acquisition.sources.base import SourceStatus
from acquisition.sources.replay import RecordingError, ReplaySource, load_recording, read_recording
from acquisition.sources.spec import open_source
from tests.support.sources import ramp_recording, write_csv, write_epoc_edf

HEADER = ["time", *EPOC_CHANNELS]


def _eye_state_reference(path: Path) -> np.ndarray:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:14] == [*EPOC_CHANNELS[:5], "P", *EPOC_CHANNELS[6:]]
    return np.array([[float(c) for c in row[:14]] for row in rows[1:]])


@pytest.mark.timeout(180)
def test_eye_state_csv_replays_sample_exact(eye_state_csv: Path) -> None:
    reference = _eye_state_reference(eye_state_csv)
    assert reference.shape == (14980, 14)
    glitch = (np.abs(reference - np.median(reference, axis=0)) > 2000).any(axis=1)
    assert glitch.sum() == 4 and reference.max() > 7e5  # the 4 glitch rows, replayed as they are
    source = open_source(f"replay:{eye_state_csv}@50", buffer_seconds=200)
    assert isinstance(source, ReplaySource) and source.speed == 50
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 120)  # EndOfStream at the end
    chunk = source.buffer.since(0)
    assert chunk.missed == 0
    np.testing.assert_array_equal(chunk.data, reference)
    spacing = np.diff(chunk.timestamps)
    np.testing.assert_allclose(spacing, 1 / (SFREQ_HZ * 50), rtol=1e-6)
    assert source.counters.received == len(reference)
    assert source.gaps == [] and source.counters.lost == 0
    info = source.info
    assert info is not None and info.native_channels[5] == "P"
    assert any("class" in note for note in info.notes)
    assert any("P->P7" in note for note in info.notes)


def test_load_recording_returns_the_csv_at_128_hz(eye_state_csv: Path) -> None:
    data, sfreq_hz = load_recording(eye_state_csv)
    assert sfreq_hz == SFREQ_HZ
    np.testing.assert_array_equal(data, _eye_state_reference(eye_state_csv))


@pytest.mark.timeout(180)
def test_loop_starts_over_with_continuous_timestamps(tmp_path: Path) -> None:
    n = 50
    ramp = ramp_recording(n)
    path = write_csv(tmp_path / "ramp.csv", list(EPOC_CHANNELS), ramp.tolist())
    source = ReplaySource(path, speed=20, loop=True, buffer_seconds=10)
    with source:
        assert source.wait_for_samples(3 * n + 10, 120)
        assert source.status == SourceStatus.STREAMING
    chunk = source.buffer.since(0)
    k = np.arange(len(chunk))
    np.testing.assert_array_equal(chunk.data, ramp[k % n])
    np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / (SFREQ_HZ * 20), rtol=1e-6)


@pytest.mark.timeout(180)
def test_end_of_recording_stops_the_source(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", list(EPOC_CHANNELS), ramp_recording(30).tolist())
    statuses: list[SourceStatus] = []
    source = ReplaySource(path, speed=10)
    source.add_status_listener(statuses.append)
    source.connect()
    assert source.wait_for_status(SourceStatus.STOPPED, 120)
    assert source.buffer.total == 30
    assert statuses == [SourceStatus.CONNECTING, SourceStatus.STREAMING, SourceStatus.STOPPED]
    source.disconnect()


def test_time_column_sets_the_rate_and_256_hz_is_resampled(tmp_path: Path) -> None:
    sfreq = 256.0
    t = np.arange(2560) / sfreq
    wave = 4200 + 20 * np.sin(2 * np.pi * 3.0 * t)
    rows = [[f"{ti + 1000:.6f}", *([f"{w:.6f}"] * 14)] for ti, w in zip(t, wave, strict=True)]
    path = write_csv(tmp_path / "rec256.csv", HEADER, rows)
    rec = read_recording(path)
    assert rec.native_sfreq_hz == 256.0 and rec.sfreq_hz == SFREQ_HZ
    assert rec.data.shape == (1280, 14)
    expected = 4200 + 20 * np.sin(2 * np.pi * 3.0 * np.arange(1280) / SFREQ_HZ)
    np.testing.assert_allclose(rec.data[20:-20, 0], expected[20:-20], atol=0.05)
    assert any("256 Hz to 128 Hz" in note for note in rec.notes)


def test_duygu_record_csv_at_128_hz_is_exact(tmp_path: Path) -> None:
    ramp = ramp_recording(300) + 0.125
    times = 5000.0 + np.arange(300) / SFREQ_HZ
    rows = [[repr(float(t)), *row] for t, row in zip(times, ramp.tolist(), strict=True)]
    path = write_csv(tmp_path / "rec.csv", HEADER, rows)
    data, sfreq_hz = load_recording(path)
    assert sfreq_hz == SFREQ_HZ
    np.testing.assert_array_equal(data, ramp)


def test_edf_at_256_hz_is_resampled_to_128(tmp_path: Path) -> None:
    sfreq = 256.0
    n = 256 * 8
    t = np.arange(n) / sfreq
    offsets = 4100 + 10 * np.arange(14)
    data = offsets[None, :] + 30 * np.sin(2 * np.pi * 2.0 * t)[:, None] * (1 + np.arange(14)[None, :] / 14)
    path = write_epoc_edf(tmp_path / "epoc256.edf", data, sfreq)
    rec = read_recording(path)
    assert rec.native_sfreq_hz == 256.0
    assert rec.data.shape == (n // 2, 14)
    assert rec.labels[0] == "EEG AF3"
    t128 = np.arange(n // 2) / SFREQ_HZ
    expected = offsets[None, :] + 30 * np.sin(2 * np.pi * 2.0 * t128)[:, None] * (1 + np.arange(14)[None, :] / 14)
    np.testing.assert_allclose(rec.data[16:-16], expected[16:-16], atol=0.1)  # EDF is 16-bit
    assert any("256 Hz to 128 Hz" in note for note in rec.notes)


@pytest.mark.timeout(180)
def test_edf_replay_through_the_source(tmp_path: Path) -> None:
    data = ramp_recording(256) + 4000
    labels = tuple(reversed([f"EEG {c}-REF" for c in EPOC_CHANNELS]))
    path = write_epoc_edf(tmp_path / "epoc128.edf", data[:, ::-1], SFREQ_HZ, labels=labels)
    source = ReplaySource(path, speed=20)
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 120)
    chunk = source.buffer.since(0)
    np.testing.assert_allclose(chunk.data, data, atol=0.5)  # 16-bit quantisation


def test_bdf_in_millivolts_is_converted_to_microvolts(tmp_path: Path) -> None:
    data = ramp_recording(128) + 4000
    path = write_epoc_edf(tmp_path / "epoc.bdf", data, SFREQ_HZ, unit="mV", bdf=True)
    rec = read_recording(path)
    np.testing.assert_allclose(rec.data, data, atol=0.05)


def test_store_session_replays(tmp_path: Path) -> None:
    from acquisition.store.sqlite import SessionStore

    data = ramp_recording(200) + 4000.5
    times = 100.0 + np.arange(200) / SFREQ_HZ
    store_path = tmp_path / "duygu.sqlite"
    store = SessionStore(store_path)
    sid = store.start_session("P01", {"name": "test"}, "simulated", {})
    store.append_eeg(sid, data[:120], times[:120], 0)
    store.append_eeg(sid, data[120:], times[120:], 120)
    store.finish_session(sid)
    store.close()
    got, sfreq_hz = load_recording(f"{store_path}#{sid}")
    assert sfreq_hz == SFREQ_HZ
    np.testing.assert_array_equal(got, data.astype(np.float32))
    source = open_source(f"replay:{store_path}#{sid}@40")
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 60)
    np.testing.assert_array_equal(source.buffer.since(0).data, data.astype(np.float32))
    with pytest.raises(RecordingError, match=f"session {sid + 7}"):
        load_recording(f"{store_path}#{sid + 7}")


# -- bad input ---------------------------------------------------------------------------
def _one_line_error(path: str | Path) -> str:
    with pytest.raises(RecordingError) as err:
        read_recording(path)
    assert isinstance(err.value, DataError) and isinstance(err.value, SourceError)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in _one_line_error(tmp_path / "nope.csv")


def test_csv_with_missing_columns_names_them(tmp_path: Path) -> None:
    header = [c for c in EPOC_CHANNELS if c not in ("O1", "T8")]
    path = write_csv(tmp_path / "x.csv", header, [[1.0] * 12])
    assert "missing column(s) T8, O1" not in _one_line_error(path)  # EPOC order, not header order
    assert "missing column(s) O1, T8" in _one_line_error(path)


def test_csv_non_numeric_cell_names_row_and_column(tmp_path: Path) -> None:
    rows = ramp_recording(10).tolist()
    rows[6][3] = "abc"
    path = write_csv(tmp_path / "x.csv", list(EPOC_CHANNELS), rows)
    message = _one_line_error(path)
    assert "line 8" in message and "column FC5" in message and "'abc'" in message


def test_csv_nan_cell_names_row_and_column(tmp_path: Path) -> None:
    rows = ramp_recording(10).tolist()
    rows[2][9] = "NaN"
    rows[5][1] = "nan"
    path = write_csv(tmp_path / "x.csv", list(EPOC_CHANNELS), rows)
    message = _one_line_error(path)
    assert "line 4" in message and "column T8" in message and "2 non-finite" in message


def test_csv_empty_cell_and_ragged_row(tmp_path: Path) -> None:
    rows = ramp_recording(5).tolist()
    rows[1][0] = ""
    message = _one_line_error(write_csv(tmp_path / "a.csv", list(EPOC_CHANNELS), rows))
    assert "line 3, column AF3: not a number: ''" in message
    rows = ramp_recording(5).tolist()
    rows[3] = rows[3][:10]
    message = _one_line_error(write_csv(tmp_path / "b.csv", list(EPOC_CHANNELS), rows))
    assert "line 5: 10 cells, the header has 14" in message


def test_csv_empty_or_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in _one_line_error(empty)
    assert "no samples" in _one_line_error(write_csv(tmp_path / "h.csv", list(EPOC_CHANNELS), []))


def test_time_column_that_goes_back(tmp_path: Path) -> None:
    rows = [[t, *([1.0] * 14)] for t in (0.0, 0.0078125, 0.015625, 0.01, 0.03)]
    message = _one_line_error(write_csv(tmp_path / "t.csv", HEADER, rows))
    assert "line 5, column time" in message and "does not increase" in message


def test_edf_without_epoc_channels(shared_data: Path) -> None:
    message = _one_line_error(shared_data / "edf" / "test_subsecond.edf")
    assert "no signal for AF3" in message and "AF4" in message and "signals: Fp1" in message


def test_truncated_edf_plays_what_is_there_and_says_so(tmp_path: Path) -> None:
    full = write_epoc_edf(tmp_path / "full.edf", ramp_recording(1280) + 4000, SFREQ_HZ)
    raw = full.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(raw[: len(raw) // 2])
    rec = read_recording(cut)
    assert 0 < len(rec.data) < 1280
    np.testing.assert_allclose(rec.data, ramp_recording(len(rec.data)) + 4000, atol=0.5)
    assert any("truncated" in note.lower() for note in rec.notes)


def test_garbage_edf(tmp_path: Path) -> None:
    path = tmp_path / "junk.edf"
    path.write_bytes(b"this is not an EDF file" * 20)
    assert "not a readable EDF file" in _one_line_error(path)


def test_store_spec_needs_an_integer_session(tmp_path: Path) -> None:
    assert "must be an integer" in _one_line_error(f"{tmp_path / 'x.sqlite'}#abc")
    store_file = tmp_path / "x.sqlite"
    store_file.write_bytes(b"")
    assert "needs a session id" in _one_line_error(store_file)
    assert "not found" in _one_line_error(f"{tmp_path / 'nothere.db'}#1")


def test_bad_file_fails_connect_with_one_line_source_error(tmp_path: Path) -> None:
    rows = ramp_recording(10).tolist()
    rows[4][13] = "4200..1"
    source = ReplaySource(write_csv(tmp_path / "bad.csv", list(EPOC_CHANNELS), rows))
    with pytest.raises(SourceError) as err:
        source.connect()
    assert "line 6, column AF4" in str(err.value) and "\n" not in str(err.value)
    assert source.status == SourceStatus.STOPPED
    assert source.buffer.total == 0


def test_bad_speed() -> None:
    with pytest.raises(SourceError, match="replay speed must be > 0, got 0"):
        ReplaySource("x.csv", speed=0)
