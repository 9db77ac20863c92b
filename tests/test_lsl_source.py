"""LslSource against real pylsl outlets running in another process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from support.lsl_outlets import EMOTIV_19, channel_constant, start_outlet, stop_outlet

from acquisition.channels import EPOC_CHANNELS, unit_scale_to_uv
from acquisition.errors import SourceError
from acquisition.sources.base import SourceStatus
from acquisition.sources.lsl import LslSource, analyse_layout, parse_target

CONSTS = np.array([channel_constant(i) for i in range(1, 14)])
# an outlet is a new Python process (numpy, pylsl): on a busy machine it can take tens of
# seconds to appear, so finding it and its wait for our inlet get a generous deadline; a
# healthy run waits only as long as the start really takes
START_S = 60.0
WAIT_CONSUMER = str(int(START_S))


@contextmanager
def outlet(mode: str, *args: str) -> Iterator[object]:
    proc = start_outlet(mode, *args)
    try:
        yield proc
    finally:
        stop_outlet(proc)


@contextmanager
def connected(target: str, timeout_s: float = START_S, **kwargs: object) -> Iterator[LslSource]:
    """A connected source; a loss needs 10 s of silence unless the test says otherwise (an
    outlet stalled by a busy machine must not turn a data test into a reconnect test)."""
    kwargs.setdefault("loss_timeout_s", 10.0)
    source = LslSource(target, **kwargs)  # type: ignore[arg-type]
    source.connect(timeout_s=timeout_s)
    try:
        yield source
    finally:
        source.disconnect()


def _pylsl_clock() -> float:
    import pylsl

    return float(pylsl.local_clock())


def _assert_on_this_clock(timestamps: np.ndarray, before: float, after: float) -> None:
    """Stamps on this machine's LSL clock, within the test's own span: the outlet stamps
    sample k ``t0 + k / rate`` with ``t0`` read after it started (so after ``before``) and
    pushes a sample only once the clock has passed its stamp (so before ``after``). A
    stalled outlet pushes late, which moves no stamp out of this window. 10 ms allows for
    the clock-offset estimate between two processes on one machine."""
    assert timestamps[0] >= before - 0.01, f"first stamp {timestamps[0] - before:+.3f} s from the outlet start"
    assert timestamps[-1] <= after + 0.01, f"last stamp {timestamps[-1] - after:+.3f} s after it arrived"


# -- pure parts -----------------------------------------------------------------------
def test_units_scale_to_microvolts() -> None:
    assert unit_scale_to_uv("volts") == 1e6
    assert unit_scale_to_uv("V") == 1e6
    assert unit_scale_to_uv("millivolts") == 1e3
    assert unit_scale_to_uv("µV") == 1.0
    assert unit_scale_to_uv("microvolts") == 1.0
    assert unit_scale_to_uv(None) == 1.0
    assert unit_scale_to_uv("0") == 1e6  # mne-lsl writes MNE exponents
    assert unit_scale_to_uv("-6") == 1.0
    assert unit_scale_to_uv("furlongs") is None


def test_targets_parse_names_and_properties() -> None:
    assert parse_target("EmotivDataStream-EEG").props == (("name", "EmotivDataStream-EEG"),)
    assert parse_target("type=EEG").props == (("type", "EEG"),)
    assert parse_target("name=X, type=EEG").props == (("name", "X"), ("type", "EEG"))
    assert "translate(type" in parse_target("type=eeg").predicate
    with pytest.raises(SourceError, match="KEY=VALUE"):
        parse_target("type=EEG,colour=red")
    with pytest.raises(SourceError, match="quote"):
        parse_target("name=it's")


def test_layout_by_label_not_position() -> None:
    labels = list(reversed(EMOTIV_19))
    layout = analyse_layout("s", labels, None, 128.0, len(labels))  # type: ignore[arg-type]
    assert layout.layout == "emotivpro-19"
    assert [labels[i] for i in layout.eeg_index] == list(EPOC_CHANNELS)
    assert labels[layout.counter_index] == "Counter"  # type: ignore[index]
    with pytest.raises(SourceError, match=r"unit must be V, mV, µV or nV.*got 'furlongs'"):
        analyse_layout("s", list(EPOC_CHANNELS), ["furlongs"] * 14, 128.0, 14)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="no channel labels"):
        analyse_layout("s", None, None, 128.0, 14)


# -- EmotivPRO imitation ----------------------------------------------------------------
def _check_emotiv_block(data: np.ndarray, start: int) -> None:
    """AF3 is the sample-index ramp, every other column its own constant."""
    np.testing.assert_array_equal(data[:, 0], np.arange(start, start + len(data)))
    np.testing.assert_array_equal(data[:, 1:], np.broadcast_to(CONSTS, (len(data), 13)))


@pytest.mark.timeout(150)
def test_emotiv_128hz_30s_nothing_lost_or_duplicated(lsl_name: str) -> None:
    n = 30 * 128
    before = _pylsl_clock()
    with outlet("emotiv", "--name", lsl_name, "--source-id", f"{lsl_name}-sid", "--seconds", "30",
                "--wait-consumer", WAIT_CONSUMER, "--seed", "1"), connected(lsl_name, buffer_seconds=60) as src:
        assert src.info is not None and src.info.native_channels == EMOTIV_19
        assert src.layout is not None and src.layout.layout == "emotivpro-19"
        # 30 s of real time, plus whatever a busy machine adds to the outlet's pace
        assert src.wait_for_samples(n, timeout_s=100)
        after = _pylsl_clock()
        chunk = src.buffer.since(0)
        assert len(chunk) == n, "the outlet sends exactly 30 s"
        _check_emotiv_block(chunk.data, 0)
        np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / 128, atol=1e-4)
        _assert_on_this_clock(chunk.timestamps, before, after)
        assert src.counters.lost == 0 and src.gaps == [] and src.native_lost == 0
        assert src.counters.received == n and src.counters.interpolated == 0


@pytest.mark.timeout(120)
def test_counter_skips_counted_exactly(lsl_name: str) -> None:
    runs = [range(50, 53), range(200, 201), range(383, 386), range(500, 630)]  # last > 1 s
    skipped = sorted(i for r in runs for i in r)
    n_sent = 6 * 128
    with outlet("emotiv", "--name", lsl_name, "--seconds", "6", "--wait-consumer", WAIT_CONSUMER,
                "--skip", ",".join(map(str, skipped)), "--seed", "2"), connected(lsl_name) as src:
        assert src.wait_for_samples(n_sent - len(skipped), timeout_s=30)
        chunk = src.buffer.since(0)
        expected = np.setdiff1d(np.arange(n_sent), skipped)
        np.testing.assert_array_equal(chunk.data[:, 0], expected)
        assert src.counters.lost == len(skipped) == 137
        assert [g.n_missing for g in src.gaps] == [len(r) for r in runs]
        for gap in src.gaps:  # each gap sits exactly where the ramp jumps
            ramp = chunk.data[:, 0]
            assert ramp[gap.after_index + 1] - ramp[gap.after_index] - 1 == gap.n_missing
            assert gap.end_time - gap.start_time == pytest.approx((gap.n_missing + 1) / 128, abs=1e-4)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("rate", "modulus"), [(128, 129), (256, 128)])
def test_counter_modulus_is_learnt_not_assumed(lsl_name: str, rate: int, modulus: int) -> None:
    """An older Emotiv manual says the Counter runs 0..128 (129 values); a bridge may count
    modulo 128 at 256 Hz. Either is learnt at the first wrap: no phantom duplicates or
    losses, one warning naming the modulus, and real skips still counted exactly."""
    skipped = [300, 301, 302]
    n_sent = 5 * rate
    with outlet("emotiv", "--name", lsl_name, "--rate", str(rate), "--counter-modulus", str(modulus),
                "--seconds", "5", "--wait-consumer", WAIT_CONSUMER, "--skip", ",".join(map(str, skipped))), \
            connected(lsl_name) as src:
        expected = (n_sent - len(skipped)) * 128 // rate
        assert src.wait_for_samples(expected - 16, timeout_s=60)
        assert src.duplicates == 0
        assert src.native_lost == len(skipped)
        assert src.last_error is not None and f"Counter runs 0..{modulus - 1}" in src.last_error
        if rate == 128:
            ramp = src.buffer.since(0).data[:, 0]
            np.testing.assert_array_equal(ramp, np.setdiff1d(np.arange(n_sent), skipped)[:len(ramp)])


@pytest.mark.timeout(90)
def test_hardware_and_emotivpro_markers_become_events_and_stored_markers(lsl_name: str, tmp_path: Path) -> None:
    from acquisition.store.recorder import StoreRecorder
    from acquisition.store.sqlite import SessionStore

    with outlet("emotiv", "--name", lsl_name, "--seconds", "4", "--wait-consumer", WAIT_CONSUMER,
                "--hardware-at", "100:1,101:1,300:2", "--markers-at", "200:17"), connected(lsl_name) as src, \
            SessionStore(tmp_path / "s.sqlite") as store:
        sid = store.start_session("P01", {"name": "x"}, "lsl", {})
        rec = StoreRecorder(src, store, sid, start_index=0).start()
        assert src.wait_for_samples(4 * 128 - 1, timeout_s=60)
        rec.stop()
        events = src.buffer.events_since(0)
        assert [e.text for e in events] == ["hardware:1", "emotivpro:17", "hardware:2"]  # changes only
        ramp = src.buffer.since(0).data[:, 0]
        marks = {m.text: m.sample_index for m in store.markers(sid)}
    assert {k: ramp[v] for k, v in marks.items()} == {"hardware:1": 100, "emotivpro:17": 200, "hardware:2": 300}


@pytest.mark.timeout(150)
def test_emotiv_256hz_30s_resampled_to_128(lsl_name: str) -> None:
    before = _pylsl_clock()
    with outlet("emotiv", "--name", lsl_name, "--rate", "256", "--seconds", "30",
                "--wait-consumer", WAIT_CONSUMER, "--seed", "3"), connected(lsl_name, buffer_seconds=60) as src:
        assert src.layout is not None and src.layout.native_sfreq_hz == 256.0
        assert src.wait_for_samples(30 * 128 - 16, timeout_s=100)  # the filter holds ~10 back
        after = _pylsl_clock()
        chunk = src.buffer.since(0)
        ramp = chunk.data[:, 0]
        # output j sits on native sample 2j: the ramp steps by 2, nothing lost or doubled
        np.testing.assert_allclose(ramp[12:], 2.0 * np.arange(12, len(ramp)), atol=1e-6)
        np.testing.assert_array_equal(np.rint(ramp / 2), np.arange(len(ramp)))
        np.testing.assert_allclose(chunk.data[:, 1:], np.broadcast_to(CONSTS, (len(ramp), 13)),
                                   rtol=1e-12)
        # spacing exact but for liblsl's clock-offset re-estimates (a few tenths of a ms on a
        # busy machine)
        np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / 128, atol=5e-4)
        _assert_on_this_clock(chunk.timestamps, before, after)
        # Counter runs 0..255 at 256 Hz: read right, it reports no loss
        assert src.native_lost == 0 and src.counters.lost == 0 and src.gaps == []


@pytest.mark.timeout(120)
def test_256hz_counter_gap_resets_resampler_and_counts_slots(lsl_name: str) -> None:
    skipped = [*range(300, 310), 701]  # 10 native = 5 output slots; 701 is off the 128 Hz grid
    interpolated = [20, 21, 40]  # 21 is off the grid: 2 output samples come from filled-in ones
    with outlet("emotiv", "--name", lsl_name, "--rate", "256", "--seconds", "4",
                "--wait-consumer", WAIT_CONSUMER, "--skip", ",".join(map(str, skipped)),
                "--interpolate", ",".join(map(str, interpolated))), connected(lsl_name) as src:
        assert src.wait_for_samples(4 * 128 - 6 - 16, timeout_s=30)
        ramp = src.buffer.since(0).data[:, 0]
        assert src.native_lost == len(skipped)
        slots = np.rint(ramp / 2).astype(int)  # each output keeps its native slot
        assert len(np.unique(slots)) == len(slots) and np.all(np.diff(slots) >= 1)
        missing = np.setdiff1d(np.arange(slots[0], slots[-1] + 1), slots)
        np.testing.assert_array_equal(missing, [150, 151, 152, 153, 154])  # native 300..309
        assert src.counters.lost == len(missing) == sum(g.n_missing for g in src.gaps)
        assert src.counters.interpolated == 2


@pytest.mark.timeout(120)
def test_older_18_channel_layout_and_interpolated_count(lsl_name: str) -> None:
    interpolated = [10, 11, 12, 100]
    with outlet("emotiv", "--name", lsl_name, "--channels", "18", "--seconds", "3",
                "--wait-consumer", WAIT_CONSUMER, "--interpolate", ",".join(map(str, interpolated))), \
            connected(lsl_name) as src:
        assert src.layout is not None and src.layout.layout == "emotivpro-18"
        assert src.wait_for_samples(3 * 128, timeout_s=30)
        _check_emotiv_block(src.buffer.since(0).data, 0)
        assert src.counters.interpolated == len(interpolated)
        assert src.counters.lost == 0


@pytest.mark.timeout(120)
def test_generic_stream_any_label_order_volts_500hz_resampled(lsl_name: str) -> None:
    labels = ["Fp1", *reversed(EPOC_CHANNELS), "AUX"]
    with outlet("generic", "--name", lsl_name, "--labels", ",".join(labels), "--unit", "volts",
                "--rate", "500", "--format", "double64", "--seconds", "3", "--wait-consumer", WAIT_CONSUMER), \
            connected(f"name={lsl_name}") as src:
        assert src.layout is not None and src.layout.layout == "generic"
        assert src.wait_for_samples(3 * 128 - 40, timeout_s=30)
        data = src.buffer.since(0).data
        step = 500 / 128  # the 500 Hz ramp, seen every 3.90625 native samples
        np.testing.assert_allclose(np.diff(data[20:-5, 0]), step, atol=2e-3)  # polyphase ripple
        np.testing.assert_allclose(data[:, 1:], np.broadcast_to(CONSTS, (len(data), 13)), rtol=1e-9)


@pytest.mark.timeout(120)
def test_type_target_finds_stream(lsl_name: str) -> None:
    from acquisition.sources.spec import open_source

    src = open_source(f"lsl:type=t{lsl_name}")  # the type matches whatever its case
    assert isinstance(src, LslSource)
    with outlet("emotiv", "--name", lsl_name, "--type", f"T{lsl_name}", "--seconds", "2",
                "--wait-consumer", WAIT_CONSUMER), src.connect(timeout_s=START_S):
        assert src.info is not None and src.info.name == lsl_name
        assert src.wait_for_samples(128, timeout_s=30)


# -- device loss ------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_outlet_killed_and_restarted_gap_matches(lsl_name: str) -> None:
    t0 = f"{_pylsl_clock() + 0.5:.6f}"  # both processes stamp sample k at t0 + k/128
    args = ("--name", lsl_name, "--source-id", f"{lsl_name}-sid", "--t0", t0, "--seed", "4")
    events: list[tuple[SourceStatus, float]] = []
    first = start_outlet("emotiv", *args)
    try:
        with connected(lsl_name, loss_timeout_s=2.0) as src:
            src.add_status_listener(lambda s: events.append((s, time.monotonic())))
            assert src.wait_for_samples(2 * 128, timeout_s=30)
            killed_at = time.monotonic()
            stop_outlet(first)  # SIGKILL
            assert src.wait_for_status(SourceStatus.LOST, timeout_s=5)
            lost_at = next(t for s, t in events if s == SourceStatus.LOST)
            assert lost_at - killed_at < 3.0
            n_before = src.buffer.total
            second = start_outlet("emotiv", *args)
            try:
                # the new process must start first: the start deadline, not the loss bound
                assert src.wait_for_status(SourceStatus.STREAMING, timeout_s=START_S)
                assert src.wait_for_samples(n_before + 2 * 128, timeout_s=30)
            finally:
                stop_outlet(second)
            ramp = src.buffer.since(0).data[:, 0]
            assert src.counters.reconnects >= 1
            lost_gaps = [g for g in src.gaps if g.reason == "device lost"]
            assert len(lost_gaps) == 1
            gap = lost_gaps[0]
            assert gap.after_index == n_before - 1
            jump = ramp[gap.after_index + 1] - ramp[gap.after_index]
            assert jump - 1 == gap.n_missing > 2 * 128  # what was missed, from the ramp
            steps = np.delete(np.diff(ramp), gap.after_index)
            np.testing.assert_array_equal(steps, 1.0)  # nothing else lost or doubled
            assert src.counters.lost == 0  # an outage is a gap, not a device-reported drop
    finally:
        stop_outlet(first)


# -- bad input ------------------------------------------------------------------------
def test_no_stream_found_is_one_line_error(lsl_name: str) -> None:
    src = LslSource(lsl_name)
    with pytest.raises(SourceError) as err:
        src.connect(timeout_s=0.5)
    assert str(err.value) == f"no LSL stream with name {lsl_name!r} found within 0.5 s"
    assert src.status == SourceStatus.STOPPED


@pytest.mark.timeout(120)
def test_stream_without_epoc_labels_is_refused(lsl_name: str) -> None:
    with outlet("generic", "--name", lsl_name, "--labels", "Fp1,Fp2,C3,C4,AF3,F7"):
        with pytest.raises(SourceError) as err:
            LslSource(lsl_name).connect(timeout_s=START_S)
    msg = str(err.value)
    assert "\n" not in msg and lsl_name in msg
    assert "lacks the EPOC channel labels F3, FC5, T7, P7, O1, O2, P8, T8, FC6, F4, F8, AF4" in msg


@pytest.mark.timeout(120)
def test_stream_without_labels_is_refused(lsl_name: str) -> None:
    with outlet("generic", "--name", lsl_name, "--labels", ",".join(EPOC_CHANNELS), "--no-labels"):
        with pytest.raises(SourceError, match="no channel labels"):
            LslSource(lsl_name).connect(timeout_s=START_S)


@pytest.mark.timeout(120)
def test_emotiv_layout_at_500hz_is_refused(lsl_name: str) -> None:
    with outlet("emotiv", "--name", lsl_name, "--rate", "500"):
        with pytest.raises(SourceError, match=r"^sfreq must be 128 or 256 Hz, got 500 "):
            LslSource(lsl_name).connect(timeout_s=START_S)


@pytest.mark.timeout(120)
def test_irregular_rate_is_refused(lsl_name: str) -> None:
    with outlet("generic", "--name", lsl_name, "--labels", ",".join(EPOC_CHANNELS), "--rate", "0"):
        with pytest.raises(SourceError, match="sfreq must be a regular rate, got 0"):
            LslSource(lsl_name).connect(timeout_s=START_S)


@pytest.mark.timeout(120)
def test_nan_samples_dropped_counted_and_buffer_kept(lsl_name: str) -> None:
    nan_rows = [100, 101, 102, 250]
    with outlet("emotiv", "--name", lsl_name, "--seconds", "3", "--wait-consumer", WAIT_CONSUMER,
                "--nan", ",".join(map(str, nan_rows))), connected(lsl_name) as src:
        assert src.wait_for_samples(3 * 128 - len(nan_rows), timeout_s=30)
        data = src.buffer.since(0).data
        assert np.isfinite(data).all()
        np.testing.assert_array_equal(data[:, 0], np.setdiff1d(np.arange(3 * 128), nan_rows))
        assert src.counters.lost == len(nan_rows)
        assert [g.n_missing for g in src.gaps] == [3, 1]
        assert src.invalid_samples == len(nan_rows)
        assert src.last_error is not None and "NaN" in src.last_error
        assert src.status == SourceStatus.STREAMING


# -- duygu sources ----------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_sources_command_lists_stream_and_boards(lsl_name: str, tmp_path: Path) -> None:
    from app.cli import main

    out = tmp_path / "sources.json"
    with outlet("emotiv", "--name", lsl_name, "--source-id", "SN-1234", "--rate", "256"):
        import pylsl

        # the outlet process must be up before a 2 s discovery can list it
        assert pylsl.resolve_byprop("name", lsl_name, 1, START_S), "the outlet never appeared"
        assert main(["sources", "--timeout", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    row = next(s for s in report["lsl_streams"] if s["name"] == lsl_name)
    assert row["channel_count"] == 19 and row["sfreq_hz"] == 256.0
    assert row["source_id"] == "SN-1234" and row["type"] == "EEG"
    assert row["epoc_labels"] is True and row["layout"] == "emotivpro-19" and row["usable"]
    assert {"name": "SYNTHETIC_BOARD", "id": -1} in report["brainflow_boards"]
