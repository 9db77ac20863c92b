"""eeg-eye-state.csv replayed by a real external peer (mne-lsl's PlayerLSL) into LslSource."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from support.lsl_outlets import PREROLL_UV, start_outlet, stop_outlet

from acquisition.channels import EPOC_CHANNELS, canonical_label
from acquisition.sources.lsl import LslSource


def _read_csv(path: Path) -> np.ndarray:
    header = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    order = [[canonical_label(h) for h in header].index(ch) for ch in EPOC_CHANNELS]
    return table[:, order]


ROWS = 3840  # the first 30 s of the recording: the glitch of row 898 included


@pytest.mark.timeout(300)
def test_player_replay_is_sample_exact(eye_state_csv: Path, lsl_name: str) -> None:
    # the first 30 s of the file (PlayerLSL plays in real time: 6 s of lead-in + 30 s of
    # rows, ~36 s when idle), with one of its huge glitch values
    expected = _read_csv(eye_state_csv)[:ROWS]
    assert expected.shape == (ROWS, 14) and np.abs(expected).max() > 1e5
    # the player stays up until the test kills it, however late the last rows arrive
    player = start_outlet("player", "--name", lsl_name, "--source-id", f"{lsl_name}-sid",
                          "--csv", str(eye_state_csv), "--rows", f"0:{ROWS}", "--chunk-max", "16",
                          "--preroll-s", "6", "--linger-s", "300")
    # one deadline for start-up and replay (a busy machine slows either), inside the timeout
    deadline = time.monotonic() + 280.0

    def left_s() -> float:
        return max(0.0, deadline - time.monotonic())

    # a player stalled by a busy machine must not cost a reconnect (and the samples with it)
    source = LslSource(lsl_name, buffer_seconds=300, loss_timeout_s=60.0)
    try:
        source.connect(timeout_s=120)  # the player process first imports mne
        assert source.layout is not None and source.layout.units[0] == "0"  # MNE: volts
        assert source.wait_for_samples(len(expected), timeout_s=left_s()), source.stats()
        lead = np.isclose(source.buffer.since(0).data, PREROLL_UV).all(axis=1)
        start = int(np.argmin(lead))  # the first row of the recording
        assert source.wait_for_samples(start + len(expected), timeout_s=left_s()), source.stats()
        got = source.buffer.since(0).data
    finally:
        source.disconnect()
        stop_outlet(player)
    lead = np.isclose(got, PREROLL_UV).all(axis=1)
    stats = source.stats()
    assert lead[0], f"the source must connect during the lead-in; got {got[0]} first, {stats}"
    start = int(np.argmin(lead))
    assert not lead[start:].any()
    replay = got[start:start + len(expected)]
    assert len(replay) == len(expected), f"every row arrives: {len(replay)} rows, {stats}"
    # PlayerLSL sends volts; back in µV every row matches the file to float32 precision
    np.testing.assert_allclose(replay, expected, rtol=2e-7, atol=0)
    # a loss while the player was still silent leaves no gap (BaseSource records gaps only
    # between samples), so any gap here is a real hole in the replay
    assert source.counters.lost == 0 and not source.gaps, (source.gaps, stats)
