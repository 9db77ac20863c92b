"""Protocols, metrics, chance by permutation, leakage gap, scale-out; bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.errors import DataError, ProtocolError
from models.datasets import Dataset, load_feature_table
from models.evaluation import (
    evaluate,
    format_table,
    get_protocol,
    make_folds,
    permute_labels,
    run_evaluation,
)
from models.registry import (
    CLASSIFIERS,
    classifier_names,
    fit_classifier,
    get_spec,
    inner_folds,
    make_classifier,
    make_pipeline,
)
from tests.support.models_data import synthetic_dataset

ROW_KEYS = ["classifier", "split", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "confusion"]


def test_registry_names_and_unknown() -> None:
    assert {"ann", "svm-poly", "svm-rbf", "knn", "logreg"} <= set(CLASSIFIERS)
    assert {"hgb", "riemann", "eegnet"} <= set(CLASSIFIERS)
    assert classifier_names() == [*CLASSIFIERS, "auto"]
    with pytest.raises(DataError, match=r"classifier must be one of ann, svm-poly.*auto, got 'xgboost'"):
        get_spec("xgboost")
    with pytest.raises(DataError, match="got 'nope'"):
        run_evaluation(synthetic_dataset(), "grouped", ["lda", "nope"])


def test_paper_layout_and_exact_json() -> None:
    ds = synthetic_dataset()
    result = evaluate(ds, "paper", ["lda", "knn"], n_permutations=0)
    assert list(result)[:4] == ["protocol", "chance", "results", "leakage_gap"]  # the stable core first
    assert list(result)[4] == "dataset"
    assert result["main_split"] == "cv5" and result["permutation"]["n_permutations"] == 0
    assert result["protocol"] == "paper" and result["leakage_gap"] is None
    assert [(r["classifier"], r["split"]) for r in result["results"]] == [
        ("lda", "cv5"), ("lda", "70/30"), ("lda", "80/20"), ("knn", "cv5"), ("knn", "70/30"), ("knn", "80/20")]
    for r in result["results"]:
        assert list(r) == ROW_KEYS
        conf = np.array(r["confusion"])
        assert conf.shape == (4, 4) and conf.dtype.kind == "i"
        assert np.trace(conf) / conf.sum() == pytest.approx(r["accuracy"])
        assert 0 <= r["balanced_accuracy"] <= 1 and -1 <= r["mcc"] <= 1
    n = ds.n_rows
    assert np.array(result["results"][0]["confusion"]).sum() == n  # 5-fold: every row tested once
    assert np.array(result["results"][1]["confusion"]).sum() == int(np.ceil(0.3 * n))
    assert np.array(result["results"][2]["confusion"]).sum() == int(np.ceil(0.2 * n))
    assert result["chance"] == pytest.approx(0.25)  # majority rate of 4 balanced classes
    table = format_table(result)
    assert "5-fold CV" in table and "70% - 30%" in table and "80% - 20%" in table and "Shrinkage LDA" in table
    assert "Accuracy %" in table and "F1 %" in table


def test_grouped_keeps_trials_apart_and_reports_leakage() -> None:
    ds = synthetic_dataset(effect=0.0, trial_offset=2.0)  # trial identity only: pure leakage
    spec = get_protocol("grouped")
    folds = make_folds(spec.splits[0], ds, ds.y, 0)
    assert ds.groups is not None
    assert len(folds) == 4  # 4 trials per class
    for train, test in folds:
        assert not set(ds.groups[train]) & set(ds.groups[test])
    report = run_evaluation(ds, "grouped", ["lda", "knn"], n_permutations=5)
    acc = {(r["classifier"], r["split"]): r["accuracy"] for r in report.results}
    gaps = [acc[(c, "random")] - acc[(c, "grouped")] for c in ("lda", "knn")]
    assert report.leakage_gap == pytest.approx(np.mean(gaps))
    assert report.leakage_gap > 0.3  # random k-fold memorises trials
    assert acc[("lda", "grouped")] < 0.5
    assert len(report.null_accuracies) == 5 and report.chance < 0.5  # grouped null: near 1/4


def test_group_permutation_keeps_trials_whole() -> None:
    ds = synthetic_dataset()
    rng = np.random.default_rng(0)
    assert ds.groups is not None
    perm = permute_labels(ds.y, ds.groups, rng)
    for g in np.unique(ds.groups):
        assert len(set(perm[ds.groups == g])) == 1
    assert sorted(perm.tolist()) == sorted(ds.y.tolist())
    assert (perm != ds.y).any()


def test_loso_and_determinism() -> None:
    ds = synthetic_dataset(n_subjects=2, effect=2.0, trial_offset=0.3)
    a = evaluate(ds, "loso", ["lda"], n_permutations=4, random_state=3)
    b = evaluate(ds, "loso", ["lda"], n_permutations=4, random_state=3)
    assert a == b
    assert [r["split"] for r in a["results"]] == ["loso"]
    assert a["results"][0]["accuracy"] > 0.8
    assert np.array(a["results"][0]["confusion"]).sum() == ds.n_rows


@pytest.mark.timeout(120)
def test_dask_local_cluster_gives_the_same_result() -> None:
    from dask.distributed import LocalCluster

    ds = synthetic_dataset(n_trials=8, rows_per_trial=8)
    local = evaluate(ds, "grouped", ["lda"], n_permutations=2)
    done: list[int] = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1",
                      protocol="tcp", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        remote = evaluate(ds, "grouped", ["lda"], n_permutations=2, scheduler=address,
                          progress=lambda d, t: done.append(d))
    assert remote == local
    assert done[0] == 0  # a first report before any unit has finished
    assert done[-1] == len(done) - 1 == 2 * 2 + 2  # 2 splits x 2 folds + 2 permutations


def test_unreachable_scheduler_is_one_line_error() -> None:
    from acquisition.errors import DuyguError

    with pytest.raises(DuyguError, match=r"scheduler 'tcp://127\.0\.0\.1:1' cannot be reached"):
        evaluate(synthetic_dataset(n_trials=8), "grouped", ["lda"], scheduler="tcp://127.0.0.1:1")


def test_bad_inputs_are_one_line_errors() -> None:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=2)
    small = Dataset(ds.X[:12], ds.y[:12], ds.groups[:12], ds.subjects[:12], ds.feature_names)  # type: ignore[index]
    with pytest.raises(DataError, match=r"class '.*' has 2 samples, fewer than the 5 folds of protocol 'paper'"):
        evaluate(small, "paper", ["lda"])
    one_class = Dataset(ds.X, np.array(["a"] * ds.n_rows), ds.groups, None, ds.feature_names)
    with pytest.raises(DataError, match="at least 2 classes"):
        evaluate(one_class, "paper", ["lda"])
    X = ds.X.copy()
    X[3, 2] = np.inf
    with pytest.raises(DataError, match="finite"):
        evaluate(Dataset(X, ds.y, ds.groups, None, ds.feature_names), "grouped", ["lda"])
    with pytest.raises(ProtocolError, match="protocol must be one of paper, grouped, loso"):
        evaluate(ds, "random", ["lda"])
    with pytest.raises(DataError, match="needs groups"):
        evaluate(Dataset(ds.X, ds.y, None, None, ds.feature_names), "grouped", ["lda"])
    one_trial = synthetic_dataset(n_trials=4, rows_per_trial=6)
    with pytest.raises(DataError, match=r"class '.*' has 1 trial, fewer than the 2 folds"):
        evaluate(one_trial, "grouped", ["lda"])
    with pytest.raises(DataError, match="needs >= 2 subjects"):
        evaluate(synthetic_dataset(n_subjects=1), "loso", ["lda"])
    with pytest.raises(DataError, match="needs subject ids"):
        evaluate(Dataset(ds.X, ds.y, ds.groups, None, ds.feature_names), "loso", ["lda"])


def test_inner_search_is_grouped_and_seeded() -> None:
    ds = synthetic_dataset(n_trials=12, rows_per_trial=5)
    assert ds.groups is not None
    folds, info = inner_folds(ds.y, ds.groups, random_state=1, by="trial")
    assert info.grouped and info.by == "trial" and info.n_splits == 3
    for train, test in folds:
        assert not set(ds.groups[train]) & set(ds.groups[test])
    est = fit_classifier(make_classifier("logreg", random_state=1), ds.X, ds.y, ds.groups, "trial")
    assert est.inner_cv_ == info and set(est.best_params_) == {"C"}
    a = fit_classifier(make_pipeline("ann", 5), ds.X, ds.y).predict_proba(ds.X)  # type: ignore[attr-defined]
    b = fit_classifier(make_pipeline("ann", 5), ds.X, ds.y).predict_proba(ds.X)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a, b)


def test_real_eye_state_recording_paper_protocol(eye_state_csv: Path) -> None:
    ds = load_feature_table(eye_state_csv, "class")
    report = run_evaluation(ds, "paper", ["lda"], n_permutations=0)
    accs = [r["accuracy"] for r in report.results]
    assert len(accs) == 3 and all(0.5 < a < 1.0 for a in accs)
    assert report.chance == pytest.approx(max(np.mean(ds.y == "0"), np.mean(ds.y == "1")))


def test_shrinkage_lda_is_scikit_learns_model() -> None:
    """The registry's fast LDA (the permutation reference) gives scikit-learn's
    ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")`` probabilities."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from models.registry import ShrinkageLDA

    ds = synthetic_dataset(n_trials=16, rows_per_trial=6, n_features=8, effect=0.5)
    for keep in (ds.classes, ds.classes[:2]):  # multiclass and binary
        rows = np.isin(ds.y, keep)
        ours = ShrinkageLDA().fit(ds.X[rows], ds.y[rows])
        theirs = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(ds.X[rows], ds.y[rows])
        np.testing.assert_allclose(ours.predict_proba(ds.X), theirs.predict_proba(ds.X), atol=1e-9)
        assert (ours.predict(ds.X) == theirs.predict(ds.X)).all()
