"""LivePredictor: ring buffer -> causal features -> probabilities, in its own thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from acquisition.errors import DataError, ModelFormatError
from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
from models.bundle import Bundle, train_bundle
from models.datasets import from_trials
from models.live import LivePredictor, Prediction
from tests.support.models_data import simulated_trials, synthetic_dataset


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    ds = from_trials(simulated_trials(n_per_state=2, trial_s=16.0, rest_s=4.0, seed=3), "default")
    return train_bundle(ds, "lda")


def test_step_feeds_only_new_samples(bundle: Bundle) -> None:
    source = SimulatedEpocSource(seed=1)  # not connected: the test fills its buffer
    sim = EpocSimulator(seed=1)
    sim.set_state("happy")
    predictor = LivePredictor(bundle, source, hop_s=0.25)
    assert predictor.step() is None  # nothing yet
    data = sim.generate(3 * 128)
    source.buffer.push(data, np.arange(len(data)) / 128.0)
    assert predictor.step() is None  # 3 s < the 4 s window
    data = sim.generate(2 * 128)
    source.buffer.push(data, 3.0 + np.arange(len(data)) / 128.0)
    pred = predictor.step()
    assert isinstance(pred, Prediction)
    assert predictor.extractor.total_samples == 5 * 128  # each sample pushed once
    assert pred.t == pytest.approx(5.0 - 1 / 128)
    assert set(pred.probabilities) == set(bundle.classes)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    assert pred.label == max(pred.probabilities, key=pred.probabilities.__getitem__)
    assert pred.latency_ms > 0
    assert list(pred.as_dict()) == ["t", "probabilities", "label", "latency_ms", "clean", "reason"]
    assert predictor.step() is None  # no new samples, no new prediction


def test_smoothing_averages_recent_predictions(bundle: Bundle) -> None:
    source = SimulatedEpocSource(seed=2)
    sim = EpocSimulator(seed=2)
    raw = sim.generate(8 * 128)
    source.buffer.push(raw[:4 * 128], np.arange(4 * 128) / 128.0)
    plain = LivePredictor(bundle, source, smoothing=0)
    smooth = LivePredictor(bundle, source, smoothing=3)
    probs, smoothed = [], []
    for k in range(4):
        if k:
            lo = (4 + k - 1) * 128
            source.buffer.push(raw[lo:lo + 128], np.arange(lo, lo + 128) / 128.0)
        probs.append(np.array(list(plain.step().probabilities.values())))  # type: ignore[union-attr]
        smoothed.append(np.array(list(smooth.step().probabilities.values())))  # type: ignore[union-attr]
    np.testing.assert_allclose(smoothed[-1], np.mean(probs[-3:], axis=0))


@pytest.mark.timeout(60)
def test_thread_predicts_the_simulated_state(bundle: Bundle) -> None:
    got: list[Prediction] = []
    enough = threading.Event()

    def on_prediction(p: Prediction) -> None:
        got.append(p)
        if len(got) >= 12:
            enough.set()

    with SimulatedEpocSource(seed=5, speed=8.0) as source:
        source.set_state("tense")
        predictor = LivePredictor(bundle, source, hop_s=0.25)
        predictor.add_listener(on_prediction)
        predictor.start()
        assert enough.wait(30.0), f"only {len(got)} predictions"
        predictor.stop()
        assert not predictor.running
    times = [p.t for p in got]
    assert times == sorted(times)
    # one prediction per 0.25 s of signal; at speed 8 that is 0.25 / 8 s of timestamps
    assert np.median(np.diff(times)) == pytest.approx(0.25 / 8, rel=0.5)
    late = got[-6:]  # after the causal filter and the state have settled
    assert sum(p.label == "tense" for p in late) >= 4


@pytest.mark.timeout(60)
def test_errors_are_surfaced_not_swallowed(bundle: Bundle) -> None:
    errors: list[BaseException] = []
    failed = threading.Event()

    def broken(p: Prediction) -> None:
        raise RuntimeError("listener broke")

    with SimulatedEpocSource(seed=6, speed=8.0) as source:
        predictor = LivePredictor(bundle, source)
        predictor.add_listener(broken)
        predictor.add_error_listener(lambda exc: (errors.append(exc), failed.set()))
        predictor.start()
        assert failed.wait(30.0)
        with pytest.raises(RuntimeError, match="listener broke"):
            predictor.stop()
    assert isinstance(predictor.error, RuntimeError) and errors == [predictor.error]


def test_refuses_bad_setup(bundle: Bundle) -> None:
    source = SimulatedEpocSource(seed=0)
    with pytest.raises(DataError, match="hop_s must be > 0"):
        LivePredictor(bundle, source, hop_s=0.0)
    table = train_bundle(synthetic_dataset(n_trials=8, rows_per_trial=4), "lda")
    with pytest.raises(ModelFormatError, match="feature table"):
        LivePredictor(table, source)
    other = Bundle(bundle.estimator, {**bundle.meta, "sfreq_hz": 256.0})
    with pytest.raises(ModelFormatError, match=r"trained at 256\.0 Hz"):
        LivePredictor(other, source)
