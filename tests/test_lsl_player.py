"""eeg-eye-state.csv replayed by a real external peer (mne-lsl's PlayerLSL) into LslSource."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.lsl_outlets import PREROLL_UV, start_outlet, stop_outlet

from acquisition.channels import EPOC_CHANNELS, canonical_label
from acquisition.lsl import LslSource


def _read_csv(path: Path) -> np.ndarray:
    header = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    order = [[canonical_label(h) for h in header].index(ch) for ch in EPOC_CHANNELS]
    return table[:, order]


@pytest.mark.timeout(300)
def test_player_replay_is_sample_exact(eye_state_csv: Path, lsl_name: str) -> None:
    expected = _read_csv(eye_state_csv)
    assert expected.shape == (14980, 14)
    player = start_outlet("player", "--name", lsl_name, "--source-id", f"{lsl_name}-sid",
                          "--csv", str(eye_state_csv), "--chunk-max", "16", "--preroll-s", "6",
                          "--linger-s", "30")
    # a generous loss timeout: a player stalled by a busy machine must not cost a reconnect
    source = LslSource(lsl_name, buffer_seconds=300, loss_timeout_s=20.0)
    try:
        source.connect(timeout_s=60)  # the player process first imports mne
        assert source.layout is not None and source.layout.units[0] == "0"  # MNE: volts
        assert source.wait_for_samples(len(expected), timeout_s=240)
        lead = np.isclose(source.buffer.since(0).data, PREROLL_UV).all(axis=1)
        start = int(np.argmin(lead))  # the first row of the recording
        assert source.wait_for_samples(start + len(expected), timeout_s=60)
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
    assert source.counters.lost == 0 and not source.gaps
