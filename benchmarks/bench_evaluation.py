"""Evaluation at a realistic cost: Duygu's honest LOSO against plain scikit-learn's.

The table is :func:`models.synthetic.emotion_table` with the shape of the real EPOC+
emotion table (3,248 overlapping windows, 56 features, 28 subjects, 4 classes, per-subject
baselines and responses, per-trial offsets, windows sharing half their noise).

* **plain**: what a researcher writes by hand: for each of the paper's four classifiers
  (MLP, polynomial SVM, RBF SVM, KNN) ``make_pipeline(StandardScaler(), Estimator())``
  with scikit-learn's defaults, leave one subject out, one process, no tuning, no
  permutations.
* **duygu**: ``run_evaluation(loso, ann,svm-poly,svm-rbf,knn, 200 permutations)`` on all
  cores: subject-grouped inner search, calibrated SVMs, a within-subject permutation
  null of shrinkage LDA. Target: <= 2x plain's time, measured in the same run.
* **duygu auto**: the same with ``--classifiers auto`` (an inner-CV choice among the
  ``auto`` entries in every fold). Target: <= 3x plain's time.

Accuracies are reported beside the times, so a faster but worse evaluation shows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

N_PERMUTATIONS = 200


def _table(quick: bool) -> Any:
    from models.synthetic import emotion_table

    return emotion_table(n_subjects=8 if quick else 28, effect=0.8, seed=0)


def plain_loso(dataset: Any) -> tuple[float, dict[str, float]]:
    """Seconds and LOSO accuracy per classifier of scikit-learn's defaults, one process."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    estimators = {"ann": lambda: MLPClassifier(random_state=0), "svm-poly": lambda: SVC(kernel="poly"),
                  "svm-rbf": lambda: SVC(), "knn": lambda: KNeighborsClassifier()}
    X, y = dataset.X, dataset.y
    accuracy = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, make in estimators.items():
            correct = 0
            for train, test in LeaveOneGroupOut().split(X, y, dataset.subjects):
                model = make_pipeline(StandardScaler(), make()).fit(X[train], y[train])
                correct += int(np.sum(model.predict(X[test]) == y[test]))
            accuracy[name] = correct / len(y)
    return time.perf_counter() - t0, accuracy


def duygu_loso(dataset: Any, classifiers: list[str], n_permutations: int) -> tuple[float, Any]:
    """Seconds and the report of Duygu's LOSO on all cores."""
    from models.evaluation import run_evaluation

    t0 = time.perf_counter()
    report = run_evaluation(dataset, "loso", classifiers, n_permutations=n_permutations, n_jobs=-1)
    return time.perf_counter() - t0, report


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows (see the module docstring)."""
    from models.registry import PAPER_CLASSIFIERS

    ds = _table(quick)
    n_perm = 20 if quick else N_PERMUTATIONS
    shape = f"{ds.n_rows} rows x {ds.X.shape[1]} features, {len(set(ds.subjects.tolist()))} subjects"
    plain_s, plain_acc = plain_loso(ds)
    paper_s, paper = duygu_loso(ds, list(PAPER_CLASSIFIERS), n_perm)
    auto_s, auto = duygu_loso(ds, ["auto"], n_perm)
    rows: list[dict[str, Any]] = [
        {"name": f"plain scikit-learn LOSO, paper's 4 classifiers, defaults, one process ({shape})",
         "value": plain_s, "unit": "s", "target": None, "ok": None},
        {"name": f"duygu LOSO, paper's 4 classifiers, grouped inner search, {n_perm} permutations, all cores",
         "value": paper_s, "unit": "s", "target": None, "ok": None},
        {"name": "evaluation LOSO time, paper's 4 classifiers (+ permutations): duygu/scikit-learn",
         "value": paper_s / plain_s, "unit": "x", "target": "<= 2x", "ok": paper_s / plain_s <= 2.0,
         "duygu": paper_s, "peer": plain_s, "peer_name": "scikit-learn", "measure_unit": "s"},
        {"name": f"duygu LOSO --classifiers auto, {n_perm} permutations, all cores", "value": auto_s,
         "unit": "s", "target": None, "ok": None},
        {"name": "evaluation LOSO time, auto (+ permutations): duygu/scikit-learn", "value": auto_s / plain_s,
         "unit": "x", "target": "<= 3x", "ok": auto_s / plain_s <= 3.0, "duygu": auto_s, "peer": plain_s,
         "peer_name": "scikit-learn", "measure_unit": "s"},
    ]
    for name in PAPER_CLASSIFIERS:
        acc = paper.row(name, "loso")["accuracy"]
        rows.append({"name": f"evaluation LOSO accuracy {name}: duygu/scikit-learn", "value": acc / plain_acc[name],
                     "unit": "x", "target": None, "ok": None, "duygu": acc, "peer": plain_acc[name],
                     "peer_name": "scikit-learn", "measure_unit": "accuracy"})
    rows.append({"name": f"LOSO accuracy auto (chose {auto.auto['chosen'] if auto.auto else {}})",
                 "value": auto.row("auto", "loso")["accuracy"], "unit": "", "target": None, "ok": None})
    rows.append({"name": f"permutation p of the reference ({paper.reference[0]}), chance {paper.chance:.3f}",
                 "value": paper.p_value, "unit": "", "target": None, "ok": None})
    return rows
