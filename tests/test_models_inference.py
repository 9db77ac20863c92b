"""The compiled pipelines of the live path give the pipelines' own probabilities, for
every registry entry, on real feature rows and raw windows (no timing here: the live
update's latency is measured by benchmarks/bench_models.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.datasets import Dataset, from_trials
from models.inference import CompiledPipeline, compile_pipeline
from models.registry import (
    CLASSIFIERS,
    FEATURE_CLASSIFIERS,
    fit_classifier,
    input_of,
    make_classifier,
    make_pipeline,
)
from tests.support.models_data import simulated_trials


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return from_trials(simulated_trials(n_per_state=2, trial_s=12.0), "default", keep_windows=True)


def _fitted(name: str, ds: Dataset, binary: bool = False) -> tuple[object, np.ndarray]:
    rows = ds.windows if input_of(name) == "windows" else ds.X
    assert rows is not None
    y = ds.y
    if binary:
        keep = np.isin(y, y[:1]) | np.isin(y, [c for c in np.unique(y) if c != y[0]][:1])
        rows, y = rows[keep], y[keep]
    if name == "eegnet":  # one epoch: the forward pass is what is compared
        pipe = make_pipeline("eegnet")
        pipe.set_params(clf__estimator__max_epochs=1)
        return fit_classifier(pipe, rows, y), rows
    # the tuned classifier: the chosen hyper-parameters, and the SVMs' calibration
    return fit_classifier(make_classifier(name), rows, y).pipeline_, rows


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_compiled_equals_the_pipeline_for_every_entry(name: str, dataset: Dataset) -> None:
    from models.registry import check_available

    check_available(name)  # every entry is installed with the dev and deep extras
    pipe, rows = _fitted(name, dataset)
    shape = rows.shape[1:]
    compiled = compile_pipeline(pipe, shape)
    assert compiled.fast, compiled.description
    assert "its own" not in compiled.description
    expected = np.asarray(pipe.predict_proba(rows), dtype=np.float64)  # type: ignore[attr-defined]
    tolerance = 1e-5 if rows.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(compiled.predict_proba(rows), expected, atol=tolerance, rtol=0)
    np.testing.assert_allclose(compiled.predict_proba(rows[:1]), expected[:1], atol=tolerance, rtol=0)
    assert list(compiled.classes_) == list(pipe.classes_)  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [n for n in FEATURE_CLASSIFIERS if n not in ("lda",)])
def test_compiled_equals_the_pipeline_on_two_classes(name: str, dataset: Dataset) -> None:
    """Binary problems have their own layouts (one SVM decision, one logistic output)."""
    pipe, rows = _fitted(name, dataset, binary=True)
    compiled = compile_pipeline(pipe, rows.shape[1:])
    assert compiled.fast, compiled.description
    np.testing.assert_allclose(compiled.predict_proba(rows),
                               pipe.predict_proba(rows), atol=1e-9, rtol=0)  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
def test_a_compiled_form_that_disagrees_is_not_used(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a compiled form differs from the pipeline on the probe rows (a library that lays
    out its fitted attributes otherwise), the pipeline's own predict_proba is used."""
    import models.inference as inference

    pipe, rows = _fitted("logreg", dataset)
    real = inference._logistic
    monkeypatch.setattr(inference, "_logistic", lambda est: (lambda X: real(est)(X)[:, ::-1]))
    compiled = CompiledPipeline(pipe, inference.probe_rows(pipe, rows.shape[1:]))
    assert not compiled.fast and "its own predict_proba" in compiled.description
    np.testing.assert_allclose(compiled.predict_proba(rows), pipe.predict_proba(rows))  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
def test_live_predictor_predicts_with_the_compiled_pipeline(dataset: Dataset) -> None:
    """Each live prediction is the bundle's own probabilities of the live window's features."""
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from models.bundle import train_bundle
    from models.live import LivePredictor

    bundle = train_bundle(dataset, "svm-rbf")
    source = SimulatedEpocSource(seed=3, buffer_seconds=30.0)  # fed by the test, not connected
    sim = EpocSimulator(seed=3)
    first = sim.generate(6 * 128)
    source.buffer.push(first, np.arange(len(first)) / 128.0)
    predictor = LivePredictor(bundle, source, hop_s=0.25)
    assert predictor.model.fast and "SVC + sigmoids" in predictor.model.description
    t = len(first) / 128.0
    for _ in range(5):
        chunk = sim.generate(32)
        source.buffer.push(chunk, t + np.arange(32) / 128.0)
        t += 0.25
        pred = predictor.step()
        assert pred is not None
        expected = bundle.predict_proba(predictor.extractor.features())[0]
        np.testing.assert_allclose([pred.probabilities[c] for c in bundle.classes], expected, atol=1e-9)
