"""Pipeline: artefacts on the real eye-state file, train/live agreement, simulated states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.errors import DataError
from processing.artifacts import FLAT, GLITCH, ArtefactGuard
from processing.features import feature_names
from processing.pipeline import FrontEnd, OnlineFeatureExtractor, segment_features
from tests.support.processing import (
    EYE_STATE_GLITCH_ROWS,
    chunk_sizes,
    load_eye_state,
    simulated_trials,
)

FS = 128.0
WIN = 512


@pytest.fixture
def eye(eye_state_csv: Path) -> np.ndarray:
    return load_eye_state(eye_state_csv)


def _windows_containing(rows: tuple[int, ...], starts: np.ndarray) -> set[int]:
    return {int(s) for s in starts for r in rows if s <= r < s + WIN}


def test_glitch_rows_found_and_their_windows_rejected(eye: np.ndarray) -> None:
    _, flags = FrontEnd("default", FS, 14).process(eye)
    assert tuple(np.flatnonzero(flags)) == EYE_STATE_GLITCH_ROWS
    assert np.all(flags[list(EYE_STATE_GLITCH_ROWS)] == GLITCH)

    marked = segment_features(eye, FS, "default", reject=False)
    all_starts = marked.window_starts
    assert np.array_equal(all_starts, np.arange(0, len(eye) - WIN + 1, 256))
    expected_bad = _windows_containing(EYE_STATE_GLITCH_ROWS, all_starts)
    assert set(marked.rejected_starts.tolist()) == expected_bad
    assert set(all_starts[~marked.clean].tolist()) == expected_bad

    kept = segment_features(eye, FS, "default")
    assert kept.n_rejected == len(expected_bad) == 8
    assert set(kept.window_starts.tolist()) == set(all_starts.tolist()) - expected_bad
    assert kept.X.shape == (len(all_starts) - 8, len(feature_names("default")))
    assert np.isfinite(kept.X).all()
    r = kept.report
    assert (r.glitch_samples, r.flat_samples, r.amplitude_samples) == (4, 0, 0)
    assert (r.n_windows, r.n_rejected, r.n_samples) == (len(all_starts), 8, len(eye))
    # the held rows keep the glitches out of the filter: kept windows look like the rest
    np.testing.assert_allclose(marked.X[marked.clean], kept.X)


def test_repair_keeps_the_signal_continuous(eye: np.ndarray) -> None:
    repaired, _ = ArtefactGuard(FS, 14).process(eye)
    assert np.max(np.abs(np.diff(repaired, axis=0))) < 100.0
    assert np.max(np.abs(repaired - np.median(eye, axis=0))) < 1000.0


def test_artefact_guard_is_chunking_independent(eye: np.ndarray) -> None:
    data = eye.copy()
    data[3000:3200, 5] = data[3000, 5]  # 1.6 s flat channel
    data[6000:, 2] += 2000.0  # a lasting step, not a glitch
    data[9000:9040:2, 7] += 5000.0  # a burst of alternating glitches
    whole, flags = ArtefactGuard(FS, 14).process(data)
    g = ArtefactGuard(FS, 14)
    parts, fparts, start = [], [], 0
    for n in chunk_sizes(len(data), seed=7, high=60):
        r, f = g.process(data[start:start + n])
        parts.append(r)
        fparts.append(f)
        start += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(np.concatenate(fparts), flags)
    flat = np.flatnonzero(flags & FLAT)
    assert flat.min() == 3000 + 31 and flat.max() == 3199
    step_glitch = np.flatnonzero(flags[5900:6100] & GLITCH) + 5900
    assert len(step_glitch) == 33 and step_glitch[0] == 6000  # accepted once longer than 0.25 s
    assert np.max(np.abs(np.diff(whole[5990:6100, 2]))) < 100.0
    assert np.array_equal(np.flatnonzero(flags[8990:9050] & GLITCH) + 8990, np.arange(9000, 9040, 2))


def test_flat_and_amplitude_windows_rejected(eye: np.ndarray) -> None:
    data = eye[:4000].copy()
    data[1000:1100, 0] = 8400.0  # saturated at a rail
    t = np.arange(128) / FS
    data[3000:3128, 9] += 900.0 * np.sin(2 * np.pi * 5 * t)  # over-range movement
    res = segment_features(data, FS, "default", reject=False)
    assert res.report.flat_samples > 0 and res.report.amplitude_samples > 0
    bad = set(res.rejected_starts.tolist())
    assert _windows_containing((1099,), res.window_starts) <= bad
    assert _windows_containing((3064,), res.window_starts) <= bad
    assert 0 not in bad and int(res.window_starts[-1]) not in bad


def _stream(extractor: OnlineFeatureExtractor, data: np.ndarray, ends: set[int], seed: int) -> dict[int, np.ndarray]:
    """Push ``data`` in random chunks; collect features whenever the stream reaches an end."""
    rows: dict[int, np.ndarray] = {}
    pos = 0
    for n in chunk_sizes(len(data), seed=seed, high=50):
        cut = [e for e in sorted(ends) if pos < e <= pos + n]
        prev = pos
        for e in cut:
            extractor.push(data[prev:e])
            rows[e] = extractor.features()[0]
            prev = e
        extractor.push(data[prev:pos + n])
        pos += n
    return rows


def test_online_equals_segment_features_from_the_same_start(eye: np.ndarray) -> None:
    """Same samples from the same first sample: equal to rounding (|d| < 1e-9)."""
    data = eye[:8000]
    seg = segment_features(data, FS, "default", reject=False)
    ex = OnlineFeatureExtractor("default")
    rows = _stream(ex, data, {int(s) + WIN for s in seg.window_starts}, seed=11)
    live = np.array([rows[int(s) + WIN] for s in seg.window_starts])
    np.testing.assert_allclose(live, seg.X, rtol=1e-9, atol=1e-9)
    assert ex.window_clean  # the last window (7488-8000) holds no glitch


def test_live_window_reports_artefacts(eye: np.ndarray) -> None:
    ex = OnlineFeatureExtractor("default")
    ex.push(eye[:300])
    assert not ex.ready and not ex.window_clean  # no whole window yet
    ex.push(eye[300:600])
    assert ex.window_clean
    ex.push(eye[600:900])
    assert ex.ready and not ex.window_clean  # row 898 is in the last 4 s
    assert ex.report.glitch_samples == 1
    ex.push(eye[900:900 + WIN])
    assert ex.window_clean
    assert np.isfinite(ex.features()).all()
    ex.reset()
    assert not ex.ready and ex.total_samples == 0


def test_online_agrees_with_a_trial_cut_from_a_longer_stream(eye: np.ndarray) -> None:
    """Live has run since sample 0; training filters a 30 s trial cut at sample 2000.

    Only the filter history differs. The first window of the trial differs by < 0.1 in
    log units (DE in nats, asymmetry); from the second window (2 s in) on, < 0.005.
    """
    onset = 2000
    trial = eye[onset:onset + 30 * 128]
    seg = segment_features(trial, FS, "default", reject=False)
    rows = _stream(OnlineFeatureExtractor("default"), eye[:onset + len(trial)],
                   {onset + int(s) + WIN for s in seg.window_starts}, seed=12)
    live = np.array([rows[onset + int(s) + WIN] for s in seg.window_starts])
    diff = np.abs(live - seg.X)
    assert diff[0].max() < 0.1
    assert diff[1:].max() < 0.005


@pytest.mark.timeout(90)
def test_simulated_states_separate_and_shuffled_labels_do_not() -> None:
    """4 states x 4 trials of 30 s on the simulated headset, folds grouped by trial.

    A shrinkage LDA (closed form: fast and deterministic) stands in for the models
    helper's classifiers; BLAS is pinned to one thread so parallel test workers do not
    oversubscribe the cores.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    X, y, groups = [], [], []
    for trial, (state, data) in enumerate(simulated_trials(n_repeats=4, seed=21)):
        res = segment_features(data, FS, "default")
        X.append(res.X)
        y += [state] * len(res.X)
        groups += [trial] * len(res.X)
    Xa, ya, ga = np.vstack(X), np.array(y), np.array(groups)
    assert len(np.unique(ga)) == 16
    clf = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    cv = GroupKFold(4)
    with threadpool_limits(1):
        acc = cross_val_score(clf, Xa, ya, groups=ga, cv=cv).mean()
        rng = np.random.default_rng(0)
        trial_labels = ya[np.unique(ga, return_index=True)[1]]
        shuffled = [
            cross_val_score(clf, Xa, rng.permutation(trial_labels)[ga], groups=ga, cv=cv).mean()
            for _ in range(5)
        ]
    assert acc >= 0.6  # the simulated participant is hard (docs/SOURCES.md), not separable
    assert np.mean(shuffled) < 0.45  # chance is 0.25


def test_bad_input_one_line_errors(eye: np.ndarray) -> None:
    bad = eye[:1000].copy()
    bad[10, 4] = np.inf
    for call in (
        lambda: segment_features(bad, FS, "default"),
        lambda: segment_features(eye[:1000, :13], FS, "default"),
        lambda: segment_features(eye[:300], FS, "default"),
        lambda: segment_features(eye[:1000], -1.0, "default"),
        lambda: segment_features(eye[:1000], FS, "nope"),
        lambda: OnlineFeatureExtractor("default").features(),
    ):
        with pytest.raises(DataError) as exc:
            call()
        assert "\n" not in str(exc.value) and str(exc.value)
    with pytest.raises(DataError, match="needs window_s=4"):
        segment_features(eye[:300], FS, "default")

    ex, ref = OnlineFeatureExtractor("default"), OnlineFeatureExtractor("default")
    ex.push(eye[:600])
    ref.push(eye[:600])
    with pytest.raises(DataError, match="NaN or inf"):
        ex.push(bad[:50])
    with pytest.raises(DataError, match="14 channels"):
        ex.push(eye[:50, :12])
    with pytest.raises(DataError, match="sfreq mismatch"):
        ex.push(eye[600:650], sfreq_hz=256.0)
    assert ex.total_samples == 600
    np.testing.assert_array_equal(ex.features(), ref.features())  # nothing half-pushed
    assert ex.n_features == len(feature_names("default")) == ex.features().shape[1]


def test_one_big_push_equals_the_last_segment_window(eye: np.ndarray) -> None:
    data = eye[:3000]
    seg = segment_features(data, FS, "default", reject=False)
    ex = OnlineFeatureExtractor("default")
    ex.push(data[: int(seg.window_starts[-1]) + WIN])  # longer than a window: one chunk
    np.testing.assert_allclose(ex.features()[0], seg.X[-1], rtol=1e-9, atol=1e-9)
    assert ex.report.glitch_samples == 1  # row 898
