"""Simulated participants as hard as real ones: traits, trial offsets that leak, a
cohort where LOSO is harder than grouped, artefacts, dropouts, and the EmotivPRO
simulator end to end (``duygu simulate --emotivpro`` -> ``duygu record`` / ``duygu quality``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.simulated import EpocSimulator, ParticipantTraits, SimulatedEpocSource
from models.datasets import from_trials
from models.evaluation import run_evaluation
from tests.support.emotivpro import emotivpro
from tests.support.models_data import simulated_trials

ROOT = Path(__file__).resolve().parents[1]


def test_traits_belong_to_the_participant_code_not_the_seed() -> None:
    a, b = ParticipantTraits.draw("P01"), ParticipantTraits.draw("P02")
    assert a.iaf_hz != b.iaf_hz and not np.allclose(a.band_scale, b.band_scale)
    assert 9.0 <= a.iaf_hz <= 11.5 and 0.8 <= a.aperiodic_exponent <= 1.6 and 0.5 <= a.artefact_proneness <= 2.0
    assert EpocSimulator(1, participant="P01").traits.iaf_hz == EpocSimulator(7, participant="P01").traits.iaf_hz
    # the same participant on two seeds: other samples, same person
    x1 = EpocSimulator(1, participant="P01").generate(256)
    x7 = EpocSimulator(7, participant="P01").generate(256)
    assert not np.allclose(x1, x7)


def test_the_alpha_peak_sits_at_the_participants_own_frequency() -> None:
    from scipy.signal import welch

    for code in ("P01", "P02", "P04", "P06"):
        sim = EpocSimulator(0, participant=code, variability=0.0, artefacts=False, blink_rate_hz=0.0,
                            glitch_rate_hz=0.0)
        x = sim.generate(int(120 * SFREQ_HZ))[:, [EPOC_CHANNELS.index("O1"), EPOC_CHANNELS.index("O2")]]
        f, p = welch(x, fs=SFREQ_HZ, nperseg=512, axis=0)
        p = p.sum(axis=1)
        lo, hi = np.searchsorted(f, 5.0), np.searchsorted(f, 16.0)
        hump = np.clip(p - np.interp(f, [f[lo], f[hi]], [p[lo], p[hi]]), 0, None)  # above the 1/f line
        band = (f > 6) & (f < 15)
        centre = float((f[band] * hump[band]).sum() / hump[band].sum())
        assert abs(centre - sim.traits.iaf_hz) < 0.3, (code, centre, sim.traits.iaf_hz)


def test_each_trial_has_its_own_band_power_offset() -> None:
    """Two episodes of one state differ more than two halves of one episode: the
    per-trial offset that makes a random window split leak."""
    sim = EpocSimulator(3, artefacts=False, blink_rate_hz=0.0, glitch_rate_hz=0.0)
    sos = butter(4, (13, 30), btype="bandpass", fs=SFREQ_HZ, output="sos")

    def beta(x: np.ndarray) -> np.ndarray:
        return np.log(np.mean(sosfiltfilt(sos, x - x.mean(axis=0), axis=0) ** 2, axis=0))

    within, between = [], []
    previous = None
    for _ in range(8):
        sim.set_state("happy")
        sim.generate(128)  # the approach to the new state
        x = sim.generate(int(20 * SFREQ_HZ))
        first, second = beta(x[: len(x) // 2]), beta(x[len(x) // 2:])
        within.append(np.mean(np.abs(first - second)))
        whole = beta(x)
        if previous is not None:
            between.append(np.mean(np.abs(whole - previous)))
        previous = whole
        sim.set_state("neutral")
        sim.generate(int(5 * SFREQ_HZ))
    assert np.mean(between) > 1.5 * np.mean(within), (np.mean(between), np.mean(within))


def test_emg_bursts_land_on_the_temporal_channels_and_only_with_artefacts() -> None:
    def hf_bursts(artefacts: bool) -> tuple[float, float]:
        sim = EpocSimulator(5, participant="P09", artefacts=artefacts, blink_rate_hz=0.0, glitch_rate_hz=0.0)
        x = sim.generate(int(240 * SFREQ_HZ))
        hf = sosfiltfilt(butter(4, (53, 62), btype="bandpass", fs=SFREQ_HZ, output="sos"), x, axis=0)
        hf = hf[:, [EPOC_CHANNELS.index("T7"), EPOC_CHANNELS.index("O1")]]
        power = (hf ** 2)[: len(hf) // 64 * 64].reshape(-1, 64, 2).mean(axis=1)  # per 0.5 s
        return float(power[:, 0].max() / np.median(power[:, 0])), float(power[:, 1].max() / np.median(power[:, 1]))

    t7, o1 = hf_bursts(True)
    t7_clean, _ = hf_bursts(False)
    assert t7 > 6 and t7 > 2 * o1 and t7_clean < 5, (t7, o1, t7_clean)


@pytest.mark.timeout(240)
def test_a_model_of_one_participant_transfers_worse_to_another() -> None:
    """Must hold: LOSO (train on the others, test on a new person) scores lower than
    grouped cross-validation within one participant, on a fixed seed."""
    cohort = []
    for k, code in enumerate(("P01", "P02")):  # 16 trials of 30 s each, as in the demo protocol
        cohort += simulated_trials(n_per_state=4, trial_s=30.0, rest_s=2.0, seed=20 + k, subject=code,
                                   participant=code)
    loso = run_evaluation(from_trials(cohort, "default"), "loso", ["lda"], random_state=0)
    within = [run_evaluation(from_trials([t for t in cohort if t.subject == code], "default"), "grouped", ["lda"],
                             random_state=0).row("lda", "grouped")["accuracy"] for code in ("P01", "P02")]
    loso_acc = loso.row("lda", "loso")["accuracy"]
    assert min(within) > loso_acc + 0.1, (within, loso_acc)
    assert loso_acc > 0.25  # still above chance: the shared pattern transfers


@pytest.mark.timeout(60)
def test_dropouts_are_device_losses_counted_exactly() -> None:
    with SimulatedEpocSource(seed=2, speed=20.0, dropouts=True) as source:
        source.wait_for_samples(int(60 * SFREQ_HZ), timeout_s=30)
    assert source.dropped > 0
    assert source.counters.lost == source.dropped
    assert sum(g.n_missing for g in source.gaps) == source.dropped
    chunk = source.buffer.since(0)
    steps = np.rint(np.diff(chunk.timestamps) * SFREQ_HZ * 20.0).astype(int)
    assert int((steps - 1).sum()) == source.dropped  # the timestamps jump by what is missing


def _duygu(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.timeout(150)
def test_duygu_simulate_emotivpro_records_exactly_and_its_quality_reads(tmp_path: Path) -> None:
    """``duygu simulate --emotivpro`` -> ``duygu record --source lsl:PREFIX-EEG`` loses
    nothing and counts the injected dropouts exactly; ``duygu quality`` reads its
    Contact-Quality stream."""
    prefix = f"Sim{uuid.uuid4().hex[:8]}"
    levels = "4,4,4,3,3,2,1,0,4,4,4,4,4,4"
    with emotivpro("--seconds", "40", "--dropouts", "--dropout-every", "1.5", "--contact", levels,
                   "--battery", "80", "--json", str(tmp_path / "sim.json"), prefix=prefix):
        quality = _duygu("quality", "--source", f"lsl:{prefix}-EEG", "--seconds", "20", "--json",
                         str(tmp_path / "q.json"))
        assert quality.returncode == 0, quality.stderr
        rec = _duygu("record", "--source", f"lsl:{prefix}-EEG", "--seconds", "6", "--out", str(tmp_path / "r.csv"),
                     "--json", str(tmp_path / "r.json"))
        assert rec.returncode == 0, rec.stderr
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["source_of_quality"] == "emotivpro" and q["stream"] == f"{prefix}-Contact-Quality"
    assert [q["channels"][ch]["value"] for ch in EPOC_CHANNELS] == [float(v) for v in levels.split(",")]
    assert q["battery_percent"] is not None and 75 <= q["battery_percent"] <= 80
    summary = json.loads((tmp_path / "sim.json").read_text())
    report = json.loads((tmp_path / "r.json").read_text())
    times = np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1, usecols=0)
    inside = [d for d in summary["dropouts"] if times[0] < d["t"] < times[-1]]
    assert inside, "no dropout fell inside the recording"
    assert report["lost"] == sum(d["n"] for d in inside)
    span = round((times[-1] - times[0]) * SFREQ_HZ) + 1
    assert len(times) + report["lost"] == span  # every sample sent was recorded, every gap counted
    assert report["gaps"] == len(inside)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("rate", ["128", "256"])
def test_duygu_simulate_emotivpro_for_s_seconds_ends_by_itself(tmp_path: Path, rate: str) -> None:
    """``--seconds S`` makes exactly S seconds of samples and exits (the last chunk is
    shorter than the usual four samples: it must not wait for samples that never come)."""
    for seconds in ("1.5", "2.02"):  # ends on a four-sample boundary or not
        started = time.monotonic()
        done = _duygu("simulate", "--emotivpro", "--prefix", f"End{uuid.uuid4().hex[:8]}", "--seconds", seconds,
                      "--rate", rate, "--json", str(tmp_path / f"sim-{seconds}.json"), timeout=40)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 30
        summary = json.loads((tmp_path / f"sim-{seconds}.json").read_text())
        assert summary["samples_made"] == summary["samples_sent"] == round(float(seconds) * int(rate))


@pytest.mark.timeout(180)
def test_a_rehearsal_simulated_emotivpro_follows_the_running_session(tmp_path: Path) -> None:
    """The whole study with no headset: the simulated participant feels each stimulus of
    the running Duygu session, and the codes of Duygu's EmotivPRO marker outlet come back
    in the EEG's Markers channel, as EmotivPRO's inlet puts them there."""
    from support.gui import write_protocol

    from acquisition.store.sqlite import SessionStore

    markers = f"duygu-markers-{uuid.uuid4().hex[:6]}"
    prefix = f"Emo{uuid.uuid4().hex[:8]}"
    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.5, silence_s=0.5)
    with emotivpro("--follow-markers", markers, "--seconds", "90", "--json", str(tmp_path / "sim.json"),
                   prefix=prefix):
        run = _duygu("session", "run", "--protocol", str(protocol), "--participant", "P01", "--source",
                     f"lsl:{prefix}-EEG", "--labels", "auto", "--no-audio", "--markers", markers,
                     "--emotivpro-markers", "--markers-wait-s", "20", "--store", str(tmp_path / "s.sqlite"),
                     timeout=150)
        assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "sim.json").read_text())
    felt = [state for _, state in summary["states"] if state != "neutral"]
    with SessionStore(tmp_path / "s.sqlite", readonly=True) as store:
        sid = int(run.stdout.split()[-1])
        trials = store.trials(sid)
        texts = [m.text for m in store.markers(sid)]
        codes = store.session(sid).protocol["emotivpro_marker_codes"]
    assert felt == [t.intended for t in trials]  # each stimulus's emotion, in the session's order
    back = {t for t in texts if t.startswith("emotivpro:")}
    for t in trials:  # Duygu's codes went to "EmotivPRO" and came back inside the EEG
        assert f"emotivpro:{codes[f'stim_on:{t.stimulus_id}']}" in back, (back, t.stimulus_id)


@pytest.mark.timeout(30)
def test_the_public_sosfilt_fallback_gives_the_same_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where SciPy's compiled SOS kernel is not importable, the public ``sosfilt`` is used:
    the same seed gives the same samples either way."""
    import acquisition.sources.simulated as simulated

    def run() -> np.ndarray:
        sim = EpocSimulator(seed=4)
        sim.set_state("tense")
        return sim.generate(700)

    with_kernel = run()
    monkeypatch.setattr(simulated, "_sosfilt_kernel", None)
    assert np.allclose(run(), with_kernel, rtol=0, atol=1e-9)
