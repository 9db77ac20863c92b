"""BrainFlowSource against BrainFlow's synthetic board (real native library, no mocks)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import SourceError
from acquisition.sources.base import SourceStatus, local_clock
from acquisition.sources.brainflow import MAX_SLEW, BrainFlowSource, board_ids, map_eeg_rows
from acquisition.sources.spec import open_source
from tests.support.sources import drift_samples

SYNTHETIC_BOARD = -1


@pytest.mark.timeout(180)
def test_synthetic_board_gives_14_channels_at_128_hz() -> None:
    source = BrainFlowSource(SYNTHETIC_BOARD, buffer_seconds=30)
    with source:
        assert source.wait_for_status(SourceStatus.STREAMING, 60)
        assert source.buffer.wait_for(0, 60)
        # 128 Hz of wall time: over 3 s the source gains or loses under 12.8 samples (3 %)
        drift = drift_samples(source, span_s=3.0, window_s=1.5)
        now = local_clock()
    chunk = source.buffer.since(0)
    assert source.status == SourceStatus.STOPPED
    assert chunk.data.shape[1] == len(EPOC_CHANNELS) == 14
    assert abs(drift) < 0.1 * SFREQ_HZ, f"the 250 -> 128 Hz stream drifted {drift:+.1f} samples in 3 s"
    # timestamps: 1/128 s apart, on the LSL clock, recent
    spacing = np.diff(chunk.timestamps)
    assert np.abs(spacing * SFREQ_HZ - 1).max() <= MAX_SLEW + 1e-9
    span_s = chunk.timestamps[-1] - chunk.timestamps[0]
    assert span_s == pytest.approx((len(chunk) - 1) / SFREQ_HZ, rel=0.01)
    assert abs(now - chunk.timestamps[-1]) < 1.0
    # synthetic board values are sines and noise of tens of µV, never zero rows
    assert np.all(np.isfinite(chunk.data))
    assert np.all(chunk.data.std(axis=0) > 1.0)
    info = source.info
    assert info is not None and info.native_sfreq_hz == 250.0
    assert any("first 14 EEG channels" in note and "Fz->AF3" in note for note in info.notes)
    assert any("250 Hz to 128 Hz" in note for note in info.notes)
    assert source.counters.received == len(chunk)
    assert source.counters.lost == 0 and source.gaps == []


def test_timestamp_grid_keeps_its_spacing_through_bursts_and_follows_drift() -> None:
    # board stamps as a busy host makes them: 1 ms jitter, a 0.4 s stall whose samples
    # then arrive in one burst, and a clock running 100 ppm fast
    rng = np.random.default_rng(0)
    n = 128 * 120
    true_s = 1000.0 + np.arange(n) / SFREQ_HZ * (1 + 100e-6)
    stamps = true_s + rng.uniform(0.0, 1e-3, n)
    stall = (true_s > 1030.0) & (true_s < 1030.4)
    stamps[stall] = true_s[stall][-1] + 1e-3
    source = BrainFlowSource(SYNTHETIC_BOARD)
    sizes = rng.integers(1, 40, n)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    bounds = np.append(bounds[bounds < n], n)
    grid = np.concatenate([source._dejitter(stamps[a:b]) for a, b in pairwise(bounds)])
    spacing = np.diff(grid)
    assert np.abs(spacing * SFREQ_HZ - 1).max() <= MAX_SLEW + 1e-9
    # after the first minute the grid sits on the board clock (drift followed, burst absorbed)
    assert np.abs(grid - true_s)[n // 2:].max() < 2e-3


def test_invalid_board_id_is_a_one_line_source_error() -> None:
    with pytest.raises(SourceError) as err:  # refused before BrainFlow is asked to open it
        BrainFlowSource(9999)
    message = str(err.value)
    assert "\n" not in message
    assert message == "brainflow board id 9999 is unknown to BrainFlow (see 'duygu sources')"
    # a known board that cannot start: BrainFlow's own reason, in one line
    source = BrainFlowSource("PLAYBACK_FILE_BOARD")
    with pytest.raises(SourceError) as err:
        source.connect(timeout_s=5)
    assert "\n" not in str(err.value) and "PLAYBACK_FILE_BOARD" in str(err.value)
    assert "needs ?file=" in str(err.value)
    assert source.status == SourceStatus.STOPPED


def test_board_with_fewer_than_14_eeg_channels_is_refused() -> None:
    # the Muse S board has 4 EEG channels: refused before the (bogus) port is touched
    source = BrainFlowSource(board_ids()["MUSE_S_BOARD"], serial_port="/dev/nonexistent-duygu")
    with pytest.raises(SourceError) as err:
        source.connect(timeout_s=5)
    assert "\n" not in str(err.value)
    assert "has 4 EEG channels" in str(err.value)  # refused before it touches the port


def test_open_source_builds_brainflow() -> None:
    source = open_source("brainflow:-1", buffer_seconds=5)
    assert isinstance(source, BrainFlowSource) and source.board_id == -1
    assert source.status == SourceStatus.IDLE


def test_rows_are_mapped_by_name_when_all_epoc_labels_exist() -> None:
    names = ["Fz", *reversed(EPOC_CHANNELS), "Cz"]
    rows = list(range(10, 10 + len(names)))
    chosen, notes = map_eeg_rows(rows, names, "test")
    assert notes == []
    assert [names[r - 10] for r in chosen] == list(EPOC_CHANNELS)


def test_rows_without_names_take_the_first_14_and_say_so() -> None:
    rows = list(range(1, 17))
    chosen, notes = map_eeg_rows(rows, [], "test")
    assert chosen == rows[:14]
    assert len(notes) == 1 and "row 1->AF3" in notes[0]


def test_too_few_eeg_rows_is_refused() -> None:
    with pytest.raises(SourceError, match="has 8 EEG channels; Duygu needs at least 14"):
        map_eeg_rows(list(range(8)), ["C3"] * 8, "test")


@pytest.mark.timeout(180)
def test_board_that_stops_sending_is_lost_then_reopened() -> None:
    loss_s = 1.0
    # a busy machine may delay the first samples of a session by seconds: only the
    # silence the test makes is judged with loss_s, the sessions before and after it
    # get a generous loss timeout
    source = BrainFlowSource(SYNTHETIC_BOARD, loss_timeout_s=60.0, buffer_seconds=30)
    total_at: dict[SourceStatus, int] = {}

    def on_status(status: SourceStatus) -> None:
        # runs in the reader thread as the status changes: the reconnect has not begun
        total_at.setdefault(status, source.buffer.total)
        if status == SourceStatus.LOST:
            source.loss_timeout_s = 60.0

    source.add_status_listener(on_status)
    with source:
        assert source.wait_for_samples(64, 60)
        source.loss_timeout_s = loss_s
        source._board.stop_stream()  # the board goes silent, as if unplugged
        assert source.wait_for_status(SourceStatus.LOST, 60)
        n_lost_at = total_at[SourceStatus.LOST]
        assert source.wait_for_samples(n_lost_at + 64, 60)  # a new session streams
    assert source.counters.reconnects == 1
    assert len(source.gaps) == 1
    gap = source.gaps[0]
    assert gap.reason == "device lost" and gap.after_index == n_lost_at - 1
    assert gap.n_missing == round((gap.end_time - gap.start_time) * SFREQ_HZ) - 1
    assert gap.n_missing > SFREQ_HZ * loss_s
    chunk = source.buffer.since(0)
    spacing = np.diff(chunk.timestamps)
    assert np.sum(spacing > 1.5 / SFREQ_HZ) == 1  # the one gap; elsewhere 1/128 s
