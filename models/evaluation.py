"""Evaluation protocols as data, metrics, chance level by permutation and the leakage gap.

Protocols (see :data:`PROTOCOLS` and docs/EVALUATION.md):

``paper``
    The EEG paper's design, faithfully: stratified 5-fold CV on shuffled rows plus
    stratified 70/30 and 80/20 hold-out splits, rows one classifier x split. Random
    splits of overlapping windows leak; use ``grouped`` for an honest figure.
``grouped``
    Stratified group k-fold by trial/recording (k = min(5, fewest groups of any class)):
    no group on both sides (asserted). The same classifiers are also run on a random
    stratified k-fold of the same rows (split ``random``), and the leakage gap is the
    mean over classifiers of random minus grouped accuracy.
``loso``
    Leave one subject out.

Every split pools the out-of-fold predictions of its folds into one confusion matrix
and one set of metrics. The chance level is the mean accuracy of the first
(reference) classifier on the protocol's main split after permuting the labels
(whole groups keep one label when labels are constant within groups); the p-value is
``(1 + #null >= observed) / (1 + n_permutations)``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
)
from sklearn.model_selection import (
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from acquisition.errors import DataError, DuyguError, ProtocolError
from models.datasets import Dataset
from models.registry import (
    CLASSIFIERS,
    PAPER_CLASSIFIERS,
    best_params,
    fit_classifier,
    make_classifier,
    parse_classifiers,
)

Folds = list[tuple[NDArray[np.intp], NDArray[np.intp]]]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SplitSpec:
    """One split of a protocol.

    ``kind`` is ``kfold`` (random stratified), ``holdout`` (stratified, ``test_size``),
    ``group_kfold`` (stratified, grouped by trial) or ``logo`` (leave one subject out).
    ``n_splits`` is the number of folds (``None``: decided by the data).
    """

    name: str
    kind: str
    n_splits: int | None = None
    test_size: float | None = None


@dataclass(frozen=True)
class ProtocolSpec:
    """An evaluation protocol: its splits, the main split and the leakage pair."""

    name: str
    description: str
    splits: tuple[SplitSpec, ...]
    main: str
    leakage: tuple[str, str] | None = None  # (random split, grouped split)
    inner_grouped: bool = False
    default_classifiers: tuple[str, ...] | None = None


#: Default classifiers of ``grouped`` and ``loso``: all, with shrinkage LDA first, because
#: the first is the reference of the permutation test (fast and strong on band features).
_REFERENCE_FIRST: tuple[str, ...] = ("lda", *(n for n in CLASSIFIERS if n != "lda"))


def _protocols() -> dict[str, ProtocolSpec]:
    return {
        "paper": ProtocolSpec(
            "paper",
            "the EEG paper's random 5-fold CV and 70/30, 80/20 hold-out splits (leaky on windows)",
            (SplitSpec("cv5", "kfold", 5), SplitSpec("70/30", "holdout", test_size=0.3),
             SplitSpec("80/20", "holdout", test_size=0.2)),
            main="cv5",
            default_classifiers=PAPER_CLASSIFIERS,
        ),
        "grouped": ProtocolSpec(
            "grouped",
            "stratified group k-fold by trial (no trial on both sides) and a random k-fold for the leakage gap",
            (SplitSpec("grouped", "group_kfold"), SplitSpec("random", "kfold")),
            main="grouped",
            leakage=("random", "grouped"),
            inner_grouped=True,
            default_classifiers=_REFERENCE_FIRST,
        ),
        "loso": ProtocolSpec(
            "loso",
            "leave one subject out",
            (SplitSpec("loso", "logo"),),
            main="loso",
            inner_grouped=True,
            default_classifiers=_REFERENCE_FIRST,
        ),
    }


#: Protocol names.
PROTOCOLS: tuple[str, ...] = tuple(_protocols())

MAX_FOLDS = 5


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol called ``name``; :class:`ProtocolError` naming the choices if unknown."""
    protocols = _protocols()
    if name not in protocols:
        raise ProtocolError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    return protocols[name]


# -- folds ----------------------------------------------------------------------------
def _groups_per_class(y: NDArray[Any], groups: NDArray[Any]) -> dict[str, int]:
    return {str(c): len(np.unique(groups[y == c])) for c in np.unique(y).tolist()}


def _n_group_folds(dataset: Dataset) -> int:
    assert dataset.groups is not None
    return min(MAX_FOLDS, min(_groups_per_class(dataset.y, dataset.groups).values()))


def check_protocol(dataset: Dataset, protocol: ProtocolSpec) -> None:
    """Raise :class:`DataError` if ``dataset`` cannot be evaluated with ``protocol``."""
    dataset.validate()
    classes, counts = np.unique(dataset.y, return_counts=True)
    classes = np.array([str(c) for c in classes], dtype=object)
    small = int(np.argmin(counts))
    for split in protocol.splits:
        if split.kind == "kfold" and split.n_splits is not None and counts[small] < split.n_splits:
            raise DataError(
                f"class {classes[small]!r} has {counts[small]} samples, fewer than the "
                f"{split.n_splits} folds of protocol {protocol.name!r}"
            )
        if split.kind == "holdout":
            assert split.test_size is not None
            n_test = math.ceil(split.test_size * dataset.n_rows)
            if counts[small] < 2 or n_test < len(classes) or dataset.n_rows - n_test < len(classes):
                raise DataError(
                    f"split {split.name} of protocol {protocol.name!r} needs >= 2 samples per class and "
                    f">= {len(classes)} test rows; class {classes[small]!r} has {counts[small]}, "
                    f"{dataset.n_rows} rows in all"
                )
        if split.kind == "group_kfold":
            if dataset.groups is None:
                raise DataError(f"protocol {protocol.name!r} needs groups (trial or recording ids; --group COL)")
            per_class = _groups_per_class(dataset.y, dataset.groups)
            worst = min(per_class, key=per_class.__getitem__)
            if per_class[worst] < 2:
                raise DataError(
                    f"class {worst!r} has {per_class[worst]} group(s), fewer than the 2 folds "
                    f"protocol {protocol.name!r} needs at least"
                )
        if split.kind == "logo":
            if dataset.subjects is None:
                raise DataError(f"protocol {protocol.name!r} needs subject ids (--subject COL)")
            n_subjects = len(np.unique(dataset.subjects))
            if n_subjects < 2:
                raise DataError(f"protocol {protocol.name!r} needs >= 2 subjects, got {n_subjects}")


def make_folds(split: SplitSpec, dataset: Dataset, y: NDArray[Any], random_state: int) -> Folds:
    """Train/test index pairs of ``split`` for labels ``y`` (rows of ``dataset``)."""
    X = np.zeros((len(y), 1))
    if split.kind == "kfold":
        k = split.n_splits or (_n_group_folds(dataset) if dataset.groups is not None else MAX_FOLDS)
        cv: Any = StratifiedKFold(k, shuffle=True, random_state=random_state)
        folds = list(cv.split(X, y))
    elif split.kind == "holdout":
        cv = StratifiedShuffleSplit(1, test_size=split.test_size, random_state=random_state)
        folds = list(cv.split(X, y))
    elif split.kind == "group_kfold":
        assert dataset.groups is not None
        cv = StratifiedGroupKFold(_n_group_folds(dataset), shuffle=True, random_state=random_state)
        folds = list(cv.split(X, y, dataset.groups))
        _assert_disjoint(folds, dataset.groups, "trial")
    elif split.kind == "logo":
        assert dataset.subjects is not None
        folds = list(LeaveOneGroupOut().split(X, y, dataset.subjects))
        _assert_disjoint(folds, dataset.subjects, "subject")
    else:
        raise ProtocolError(f"split kind must be kfold, holdout, group_kfold or logo, got {split.kind!r}")
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds if len(te)]


def _assert_disjoint(folds: Folds, groups: NDArray[Any], what: str) -> None:
    for train, test in folds:
        shared = np.intersect1d(groups[train], groups[test])
        if len(shared):
            raise ProtocolError(f"{what} {shared[0]!r} is on both sides of a grouped split")


# -- learners and work units (module-level so joblib/dask can ship them) --------------
class Learner:
    """What the engine fits and scores: registry classifiers on a feature table.

    ``fit_predict_proba`` fits classifier ``name`` on rows ``train`` and returns the
    class probabilities of rows ``test`` (columns in ``classes`` order) and the
    hyper-parameters the inner search chose. Subclasses change what a row is (the
    music models add an LSTM on frame sequences); the protocols, permutations, metrics
    and leakage gap stay the engine's.
    """

    #: add the one-vs-rest ROC AUC to every result row (the audio paper's metric)
    reports_roc_auc = False

    def __init__(self, X: NDArray[np.float64]) -> None:
        self.X = X

    def parse(self, classifiers: Sequence[str] | str | None) -> list[str]:
        """Validated classifier names, in the given order."""
        return parse_classifiers(classifiers)

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`DataError` if a classifier cannot run on this learner's data."""

    def fit_predict_proba(self, name: str, random_state: int, y: NDArray[Any], train: NDArray[np.intp],
                          test: NDArray[np.intp], inner_groups: NDArray[Any] | None,
                          classes: Sequence[str]) -> tuple[NDArray[np.float64], dict[str, Any]]:
        est = make_classifier(name, random_state)
        fit_classifier(est, self.X[train], y[train], None if inner_groups is None else inner_groups[train])
        proba = np.asarray(est.predict_proba(self.X[test]), dtype=np.float64)
        return align_proba(proba, est.classes_, classes), best_params(est)


def align_proba(proba: NDArray[np.float64], est_classes: Sequence[Any], classes: Sequence[str]) -> NDArray[np.float64]:
    """Probability columns of an estimator (its ``classes_`` order) in ``classes`` order;
    a class the estimator never saw gets probability 0."""
    out = np.zeros((proba.shape[0], len(classes)))
    index = {str(c): i for i, c in enumerate(classes)}
    for j, c in enumerate(est_classes):
        out[:, index[str(c)]] = proba[:, j]
    return out


def _fit_predict(learner: Learner, name: str, random_state: int, y: NDArray[Any], train: NDArray[np.intp],
                 test: NDArray[np.intp], inner_groups: NDArray[Any] | None,
                 classes: Sequence[str]) -> tuple[NDArray[np.float64], dict[str, Any]]:
    return learner.fit_predict_proba(name, random_state, y, train, test, inner_groups, classes)


def _permutation_accuracy(learner: Learner, name: str, random_state: int, dataset: Dataset,
                          y_perm: NDArray[Any], split: SplitSpec, inner_grouped: bool) -> float:
    folds = make_folds(split, dataset, y_perm, random_state)
    classes = sorted(str(c) for c in np.unique(y_perm))
    pred = np.empty(len(y_perm), dtype=object)
    tested = np.zeros(len(y_perm), dtype=bool)
    inner = dataset.groups if inner_grouped else None
    for train, test in folds:
        proba, _ = learner.fit_predict_proba(name, random_state, y_perm, train, test, inner, classes)
        pred[test] = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        tested[test] = True
    truth = np.asarray([str(v) for v in y_perm[tested]], dtype=object)
    return float(np.mean(pred[tested] == truth))


def permute_labels(y: NDArray[Any], groups: NDArray[Any] | None, rng: np.random.Generator) -> NDArray[Any]:
    """Labels permuted under the null: whole groups swap labels when each group has one label.

    Otherwise rows are permuted (within groups when groups are given).
    """
    if groups is not None:
        uniq, inverse = np.unique(groups, return_inverse=True)
        first = np.array([np.flatnonzero(inverse == g)[0] for g in range(len(uniq))])
        group_label = y[first]
        if np.array_equal(group_label[inverse], y):
            return group_label[rng.permutation(len(uniq))][inverse]
        out = y.copy()
        for g in range(len(uniq)):
            idx = np.flatnonzero(inverse == g)
            out[idx] = y[rng.permutation(idx)]
        return out
    return y[rng.permutation(len(y))]


# -- metrics --------------------------------------------------------------------------
def compute_metrics(y_true: NDArray[Any], y_pred: NDArray[Any], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro precision/recall/F1, MCC and the confusion matrix."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(classes), average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
        "confusion": confusion_matrix(y_true, y_pred, labels=list(classes)).astype(int).tolist(),
    }


def roc_auc(y_true: NDArray[Any], proba: NDArray[np.float64], classes: Sequence[str]) -> float | None:
    """One-vs-rest macro ROC AUC of pooled out-of-fold probabilities (``None`` when the
    test rows miss a class or a probability is not finite)."""
    from sklearn.metrics import roc_auc_score

    present = {str(c) for c in np.unique(y_true)}
    if present != {str(c) for c in classes} or not np.all(np.isfinite(proba)):
        return None
    if len(classes) == 2:
        return float(roc_auc_score(np.asarray(y_true).astype(str) == str(classes[1]), proba[:, 1]))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=list(classes)))


# -- results --------------------------------------------------------------------------
@dataclass
class EvaluationReport:
    """Everything one evaluation found; :meth:`as_json` is the ``duygu evaluate`` JSON."""

    protocol: str
    classes: list[str]
    results: list[dict[str, Any]]
    chance: float
    chance_method: str
    p_value: float | None
    observed: float
    reference: tuple[str, str]
    null_accuracies: list[float]
    leakage_gap: float | None
    leakage_by_classifier: dict[str, float] = field(default_factory=dict)
    fold_accuracies: dict[str, list[float]] = field(default_factory=dict)
    chosen_params: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    random_state: int = 0

    def as_json(self) -> dict[str, Any]:
        """``{"protocol", "chance", "results", "leakage_gap", "dataset"}``; ``dataset`` is
        :func:`describe_dataset` (rows, classes, groups, windows lost to gaps, ...)."""
        return {
            "protocol": self.protocol,
            "chance": float(self.chance),
            "results": [dict(r) for r in self.results],
            "leakage_gap": None if self.leakage_gap is None else float(self.leakage_gap),
            "dataset": dict(self.dataset),
        }

    def row(self, classifier: str, split: str) -> dict[str, Any]:
        """The result row of ``classifier`` on ``split``."""
        for r in self.results:
            if r["classifier"] == classifier and r["split"] == split:
                return r
        raise KeyError(f"no result for {classifier} on {split}")


def _key(classifier: str, split: str) -> str:
    return f"{classifier} | {split}"


@contextlib.contextmanager
def _backend(scheduler: str | None) -> Iterator[int | None]:
    """joblib's dask backend on ``scheduler`` (yields n_jobs to use), or nothing."""
    if not scheduler:
        yield None
        return
    import joblib

    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise DuyguError(f"--scheduler needs dask.distributed installed ({exc})") from exc
    try:
        client = Client(scheduler, timeout=5, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise DuyguError(f"scheduler {scheduler!r} cannot be reached: {exc}".replace("\n", " ")) from exc
    try:
        with client.as_current(), joblib.parallel_config(backend="dask"):
            yield -1
    finally:
        client.close()


def run_evaluation(dataset: Dataset, protocol: str = "grouped", classifiers: Sequence[str] | str | None = None,
                   n_permutations: int = 0, n_jobs: int = 1, scheduler: str | None = None,
                   random_state: int = 0, progress: ProgressCallback | None = None,
                   learner: Learner | None = None) -> EvaluationReport:
    """Evaluate ``classifiers`` on ``dataset`` with ``protocol``.

    Parameters
    ----------
    dataset : Dataset
    protocol : {"paper", "grouped", "loso"}
    classifiers : list of str or "a,b", optional
        Registry names; the first is the reference for the chance level. Default: the
        paper's four for ``paper``; every registered classifier, ``lda`` first, otherwise.
    n_permutations : int
        Label permutations for the chance level and p-value (0: chance is the
        majority-class rate, no p-value).
    n_jobs : int
        joblib workers on this machine (-1: all cores).
    scheduler : str, optional
        Address of a dask.distributed scheduler; work then runs on that cluster.
    random_state : int
        Seed of every split, estimator and permutation.
    progress : callable, optional
        ``progress(done, total)`` after each finished work unit.
    learner : Learner, optional
        What is fitted on the rows (default: registry classifiers on ``dataset.X``;
        the music models pass their own).

    Returns
    -------
    EvaluationReport
        With a learner that ``reports_roc_auc``, each result row also holds ``roc_auc``
        (one-vs-rest macro, pooled out-of-fold probabilities; ``None`` when a split's
        test rows miss a class).

    Raises
    ------
    DataError
        Bad data for the protocol (NaN/inf, one class, too few samples per class ...).
    ProtocolError
        Unknown protocol.
    """
    import joblib

    t0 = time.perf_counter()
    spec = get_protocol(protocol)
    if classifiers is None:
        classifiers = spec.default_classifiers
    learner = learner if learner is not None else Learner(dataset.X)
    names = learner.parse(classifiers)
    if n_permutations < 0:
        raise DataError(f"permutations must be >= 0, got {n_permutations}")
    check_protocol(dataset, spec)
    learner.check(names)
    classes = dataset.classes
    y = dataset.y
    inner = dataset.groups if spec.inner_grouped else None
    folds = {s.name: make_folds(s, dataset, y, random_state) for s in spec.splits}
    main_split = next(s for s in spec.splits if s.name == spec.main)

    tasks: list[tuple[str, Any]] = []
    for name in names:
        for s in spec.splits:
            for f, (train, test) in enumerate(folds[s.name]):
                tasks.append((f"fold:{name}:{s.name}:{f}", joblib.delayed(_fit_predict)(
                    learner, name, random_state, y, train, test, inner, classes)))
    rng = np.random.default_rng(random_state)
    for p in range(n_permutations):
        y_perm = permute_labels(y, dataset.groups, rng)
        tasks.append((f"perm:{p}", joblib.delayed(_permutation_accuracy)(
            learner, names[0], random_state, dataset, y_perm, main_split, spec.inner_grouped)))

    outputs: dict[str, Any] = {}
    total = len(tasks)
    with _backend(scheduler) as cluster_jobs:
        parallel = joblib.Parallel(n_jobs=cluster_jobs or n_jobs, return_as="generator_unordered")
        keyed = (joblib.delayed(_tagged)(key, call) for key, call in tasks)
        for done, (key, value) in enumerate(parallel(keyed), start=1):
            outputs[key] = value
            if progress is not None:
                progress(done, total)

    results: list[dict[str, Any]] = []
    fold_acc: dict[str, list[float]] = {}
    params: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for s in spec.splits:
            proba = np.full((len(y), len(classes)), np.nan)
            tested = np.zeros(len(y), dtype=bool)
            accs, chosen = [], []
            for f, (_, test) in enumerate(folds[s.name]):
                p_fold, best = outputs[f"fold:{name}:{s.name}:{f}"]
                proba[test] = p_fold
                tested[test] = True
                accs.append(float(np.mean(np.asarray(classes)[np.argmax(p_fold, axis=1)] == y[test])))
                chosen.append(best)
            pred = np.asarray(classes)[np.argmax(proba[tested], axis=1)]
            row: dict[str, Any] = {"classifier": name, "split": s.name}
            row.update(compute_metrics(y[tested], pred, classes))
            if learner.reports_roc_auc:
                row["roc_auc"] = roc_auc(y[tested], proba[tested], classes)
            results.append(row)
            fold_acc[_key(name, s.name)] = accs
            params[_key(name, s.name)] = chosen

    observed = next(r["accuracy"] for r in results if r["classifier"] == names[0] and r["split"] == spec.main)
    null = [float(outputs[f"perm:{p}"]) for p in range(n_permutations)]
    if null:
        chance = float(np.mean(null))
        p_value: float | None = (1 + sum(v >= observed for v in null)) / (1 + len(null))
        method = "permutation"
    else:
        _, counts = np.unique(y, return_counts=True)
        chance = float(counts.max() / counts.sum())
        p_value = None
        method = "majority"

    gap = None
    gaps: dict[str, float] = {}
    if spec.leakage is not None:
        random_name, grouped_name = spec.leakage
        for name in names:
            acc = {r["split"]: r["accuracy"] for r in results if r["classifier"] == name}
            gaps[name] = acc[random_name] - acc[grouped_name]
        gap = float(np.mean(list(gaps.values())))

    return EvaluationReport(
        protocol=spec.name,
        classes=classes,
        results=results,
        chance=chance,
        chance_method=method,
        p_value=p_value,
        observed=observed,
        reference=(names[0], spec.main),
        null_accuracies=null,
        leakage_gap=gap,
        leakage_by_classifier=gaps,
        fold_accuracies=fold_acc,
        chosen_params=params,
        dataset=describe_dataset(dataset),
        elapsed_s=time.perf_counter() - t0,
        random_state=random_state,
    )


def _tagged(key: str, call: Any) -> tuple[str, Any]:
    func, args, kwargs = call
    return key, func(*args, **kwargs)


def describe_dataset(dataset: Dataset) -> dict[str, Any]:
    """Plain-data summary of a dataset (rows, features, classes, groups, subjects, source)."""
    classes, counts = np.unique(dataset.y, return_counts=True)
    return {
        "rows": dataset.n_rows,
        "features": int(dataset.X.shape[1]),
        "class_counts": {str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        "groups": None if dataset.groups is None else len(np.unique(dataset.groups)),
        "subjects": None if dataset.subjects is None else len(np.unique(dataset.subjects)),
        "source": dataset.meta.get("source"),
        "preset": dataset.meta.get("preset"),
        "hash": dataset.data_hash(),
        "windows_lost_to_gaps": int(dataset.meta.get("windows_lost_to_gaps", 0) or 0),
        "trials_with_gaps": int(dataset.meta.get("trials_with_gaps", 0) or 0),
        "trials_with_bad_contact": int(dataset.meta.get("trials_with_bad_contact", 0) or 0),
    }


def evaluate(dataset: Dataset, protocol: str = "grouped", classifiers: Sequence[str] | str | None = None,
             n_permutations: int = 0, n_jobs: int = 1, scheduler: str | None = None,
             random_state: int = 0, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Evaluate and return exactly the ``duygu evaluate --json`` shape.

    ``{"protocol": str, "chance": float, "results": [{"classifier", "split", "accuracy",
    "balanced_accuracy", "precision", "recall", "f1", "mcc", "confusion"}],
    "leakage_gap": float | None}``. See :func:`run_evaluation` for the parameters.
    """
    return run_evaluation(dataset, protocol, classifiers, n_permutations, n_jobs, scheduler,
                          random_state, progress).as_json()


SPLIT_LABELS = {"cv5": "5-fold CV", "70/30": "70% - 30%", "80/20": "80% - 20%",
                "grouped": "grouped k-fold", "random": "random k-fold", "loso": "leave-one-subject-out"}


def format_table(result: dict[str, Any] | EvaluationReport) -> str:
    """The paper's table layout: classifier, split, accuracy, precision, recall, F1 (in %).

    Accepts the JSON dict or an :class:`EvaluationReport` (which adds the p-value and
    the per-classifier leakage gap under the table).
    """
    report: EvaluationReport | None
    if isinstance(result, EvaluationReport):
        report, data = result, result.as_json()
    else:
        report, data = None, result
    from models.registry import registry

    labels = {name: spec.label for name, spec in registry().items()}
    head = f"{'Model':<22} {'Split':<22} {'Accuracy %':>10} {'Precision %':>11} {'Recall %':>9} {'F1 %':>7}"
    lines = [f"protocol: {data['protocol']}", head, "-" * len(head)]
    for r in data["results"]:
        lines.append(
            f"{labels.get(r['classifier'], r['classifier']):<22} {SPLIT_LABELS.get(r['split'], r['split']):<22} "
            f"{100 * r['accuracy']:>10.2f} {100 * r['precision']:>11.2f} {100 * r['recall']:>9.2f} {100 * r['f1']:>7.2f}"
        )
    lines.append("-" * len(head))
    chance_line = f"chance level: {100 * data['chance']:.2f} %"
    if report is not None:
        if report.p_value is not None:
            chance_line += (f" (mean of {len(report.null_accuracies)} label permutations of "
                            f"{report.reference[0]} on {report.reference[1]}; "
                            f"observed {100 * report.observed:.2f} %, p = {report.p_value:.3g})")
        else:
            chance_line += " (majority class; no permutations run)"
    lines.append(chance_line)
    if data["leakage_gap"] is not None:
        gap_line = f"leakage gap (random - grouped accuracy): {100 * data['leakage_gap']:+.2f} points"
        if report is not None and report.leakage_by_classifier:
            gap_line += " (" + ", ".join(f"{k} {100 * v:+.1f}" for k, v in report.leakage_by_classifier.items()) + ")"
        lines.append(gap_line)
    return "\n".join(lines)
