"""Evaluation protocols as data, metrics, chance level by permutation and the leakage gap.

Protocols (see :data:`PROTOCOLS` and docs/EVALUATION.md):

``paper``
    The EEG paper's design, faithfully: stratified 5-fold CV on shuffled rows plus
    stratified 70/30 and 80/20 hold-out splits, rows one classifier x split. Random
    splits of overlapping windows leak; use ``grouped`` for an honest figure.
``grouped``
    Stratified group k-fold by trial/recording (by stimulus when the rows carry the
    stimulus's own features, :attr:`Dataset.stimuli`; k = min(5, fewest groups of any
    class)): no group on both sides (asserted). The same classifiers are also run on a
    random stratified k-fold of the same rows (split ``random``), and the leakage gap is
    the mean over classifiers of random minus grouped accuracy.
``loso``
    Leave one subject out (crossed with stimulus folds when the rows carry stimulus
    features, so that neither a subject nor a stimulus is on both sides).

**Grouped all the way down**: the inner cross-validation of every fit (hyper-parameter
search, calibration) is grouped by the protocol's unit — the subject under ``loso``
(crossed with the stimulus when the rows carry stimulus features), the trial (or
stimulus) otherwise, the subject for tables without groups — and a fallback to row folds
is recorded (``inner_cv`` in the JSON) and warned about.

Every split pools the out-of-fold predictions of its folds into one confusion matrix
and one set of metrics. The chance level is the mean accuracy of the protocol's
**permutation reference** (shrinkage LDA unless configured) on the main split after
permuting the labels — within subject under ``loso``, whole groups otherwise; the
p-value is ``(1 + #null >= observed) / (1 + n_permutations)``.
"""

from __future__ import annotations

import contextlib
import logging
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
    AUTO,
    FEATURE_CLASSIFIERS,
    PAPER_CLASSIFIERS,
    WINDOWS,
    InnerCV,
    best_params,
    check_available,
    fit_classifier,
    inner_folds,
    input_of,
    make_classifier,
    parse_classifiers,
)

log = logging.getLogger(__name__)

Folds = list[tuple[NDArray[np.intp], NDArray[np.intp]]]
ProgressCallback = Callable[[int, int], None]

#: ``permutations_for`` values: the reference only, or every evaluated classifier.
PERMUTATIONS_FOR: tuple[str, ...] = ("reference", "all")
#: The default permutation reference of every protocol: fast, strong on band features.
DEFAULT_REFERENCE = "lda"


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
    """An evaluation protocol: its splits, the main split, the leakage pair, the inner-CV
    unit (``subject`` or ``group``) and the permutation reference."""

    name: str
    description: str
    splits: tuple[SplitSpec, ...]
    main: str
    leakage: tuple[str, str] | None = None  # (random split, grouped split)
    inner_unit: str = "group"
    default_classifiers: tuple[str, ...] | None = None
    reference: str = DEFAULT_REFERENCE


#: Default classifiers of ``grouped`` and ``loso``: every feature entry, LDA first.
_REFERENCE_FIRST: tuple[str, ...] = (DEFAULT_REFERENCE, *(n for n in FEATURE_CLASSIFIERS if n != DEFAULT_REFERENCE))


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
            default_classifiers=_REFERENCE_FIRST,
        ),
        "loso": ProtocolSpec(
            "loso",
            "leave one subject out",
            (SplitSpec("loso", "logo"),),
            main="loso",
            inner_unit="subject",
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


def split_units(dataset: Dataset) -> tuple[NDArray[Any] | None, str]:
    """The rows' unit that no grouped split may cut, and its name: the stimulus when the
    rows carry stimulus features (fusion), else the trial/recording group."""
    if dataset.stimuli is not None:
        return dataset.stimuli, "stimulus"
    return dataset.groups, "trial"


def _n_group_folds(dataset: Dataset) -> int:
    units, _ = split_units(dataset)
    assert units is not None
    return min(MAX_FOLDS, min(_groups_per_class(dataset.y, units).values()))


def inner_groups(dataset: Dataset, protocol: ProtocolSpec) -> tuple[NDArray[Any] | None, str]:
    """The groups the inner CV of ``protocol`` splits by, and their name.

    ``loso``: the subject; when the rows also carry stimulus features (which identify
    the stimulus across subjects) both, as an (n, 2) array ``[subject, stimulus]`` named
    ``"subject×stimulus"`` that :func:`~models.registry.inner_folds` crosses, so that
    neither a subject nor a stimulus is on both sides of an inner split. Otherwise the
    split unit (stimulus or trial), or the subject for a table that has subjects but no
    groups; ``None`` when the rows have neither.
    """
    units, unit_name = split_units(dataset)
    if protocol.inner_unit == "subject" and dataset.subjects is not None:
        if dataset.stimuli is None:
            return dataset.subjects, "subject"
        crossed = np.empty((dataset.n_rows, 2), dtype=object)
        crossed[:, 0], crossed[:, 1] = dataset.subjects, dataset.stimuli
        return crossed, "subject×stimulus"
    if units is not None:
        return units, unit_name
    if dataset.subjects is not None:
        return dataset.subjects, "subject"
    return None, "group"


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
        if split.kind == "group_kfold" or (split.kind == "logo" and dataset.stimuli is not None):
            units, unit_name = split_units(dataset)
            if units is None:
                raise DataError(f"protocol {protocol.name!r} needs groups (trial or recording ids; --group COL)")
            per_class = _groups_per_class(dataset.y, units)
            worst = min(per_class, key=per_class.__getitem__)
            if per_class[worst] < 2:
                noun = unit_name if per_class[worst] == 1 else {"stimulus": "stimuli"}.get(unit_name, unit_name + "s")
                raise DataError(
                    f"class {worst!r} has {per_class[worst]} {noun}, "
                    f"fewer than the 2 folds protocol {protocol.name!r} needs at least"
                    + (" (fused music columns identify the stimulus, so stimuli are kept apart)"
                       if unit_name == "stimulus" else "")
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
    units, unit_name = split_units(dataset)
    if split.kind == "kfold":
        k = split.n_splits or (_n_group_folds(dataset) if units is not None else MAX_FOLDS)
        cv: Any = StratifiedKFold(k, shuffle=True, random_state=random_state)
        folds = list(cv.split(X, y))
    elif split.kind == "holdout":
        cv = StratifiedShuffleSplit(1, test_size=split.test_size, random_state=random_state)
        folds = list(cv.split(X, y))
    elif split.kind == "group_kfold":
        assert units is not None
        cv = StratifiedGroupKFold(_n_group_folds(dataset), shuffle=True, random_state=random_state)
        folds = list(cv.split(X, y, units))
        _assert_disjoint(folds, units, unit_name)
    elif split.kind == "logo":
        assert dataset.subjects is not None
        if dataset.stimuli is None:
            folds = list(LeaveOneGroupOut().split(X, y, dataset.subjects))
        else:
            folds = _subject_by_stimulus_folds(dataset, y, random_state)
            _assert_disjoint(folds, dataset.stimuli, "stimulus")
        _assert_disjoint(folds, dataset.subjects, "subject")
    else:
        raise ProtocolError(f"split kind must be kfold, holdout, group_kfold or logo, got {split.kind!r}")
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds if len(te) and len(tr)]


def _subject_by_stimulus_folds(dataset: Dataset, y: NDArray[Any], random_state: int) -> Folds:
    """Leave one subject out crossed with stimulus folds: fold (s, k) tests subject ``s`` on
    the stimuli of fold ``k`` and trains on the other subjects' rows of the other stimuli."""
    assert dataset.subjects is not None and dataset.stimuli is not None
    k = _n_group_folds(dataset)
    cv = StratifiedGroupKFold(k, shuffle=True, random_state=random_state)
    stim_fold = np.empty(len(y), dtype=np.intp)
    for f, (_, test) in enumerate(cv.split(np.zeros((len(y), 1)), y, dataset.stimuli)):
        stim_fold[test] = f
    folds = []
    for s in np.unique(dataset.subjects):
        mine = dataset.subjects == s
        for f in range(k):
            test = np.flatnonzero(mine & (stim_fold == f))
            train = np.flatnonzero(~mine & (stim_fold != f))
            folds.append((train, test))
    return folds


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
    hyper-parameters the inner search chose. Entries that read raw windows get
    ``windows`` (the store and DEAP keep them on request). Subclasses change what a row
    is (the music models add an LSTM on frame sequences); the protocols, permutations,
    metrics and leakage gap stay the engine's.
    """

    #: add the one-vs-rest ROC AUC to every result row (the audio paper's metric)
    reports_roc_auc = False

    def __init__(self, X: NDArray[np.float64], windows: NDArray[np.float32] | None = None) -> None:
        self.X = X
        self.windows = windows

    def parse(self, classifiers: Sequence[str] | str | None) -> list[str]:
        """Validated classifier names, in the given order."""
        return parse_classifiers(classifiers)

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`DataError` if a classifier cannot run on this learner's data."""
        for name in names:
            if name == AUTO:
                continue
            check_available(name)
            if input_of(name) == WINDOWS and self.windows is None:
                raise DataError(f"classifier {name!r} reads raw EEG windows: evaluate labelled trials "
                                f"(--store or --deap), a feature table has none")

    def rows(self, name: str) -> Any:
        """What classifier ``name`` reads: the feature matrix or the raw windows."""
        return self.windows if name != AUTO and input_of(name) == WINDOWS else self.X

    def fit_predict_proba(self, name: str, random_state: int, y: NDArray[Any], train: NDArray[np.intp],
                          test: NDArray[np.intp], inner_groups: NDArray[Any] | None,
                          classes: Sequence[str]) -> tuple[NDArray[np.float64], dict[str, Any]]:
        X = self.rows(name)
        est = make_classifier(name, random_state)
        fit_classifier(est, X[train], y[train], None if inner_groups is None else inner_groups[train])
        proba = np.asarray(est.predict_proba(X[test]), dtype=np.float64)
        return align_proba(proba, est.classes_, classes), best_params(est)


def align_proba(proba: NDArray[np.float64], est_classes: Sequence[Any] | NDArray[Any],
                classes: Sequence[str]) -> NDArray[np.float64]:
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


def _permutation_accuracies(learner: Learner, names: Sequence[str], random_state: int, dataset: Dataset,
                            y_perm: NDArray[Any], split: SplitSpec,
                            inner: NDArray[Any] | None) -> dict[str, float]:
    """Accuracy of each of ``names`` on ``split`` with labels ``y_perm`` (one work unit)."""
    folds = make_folds(split, dataset, y_perm, random_state)
    classes = sorted(str(c) for c in np.unique(y_perm))
    out: dict[str, float] = {}
    for name in names:
        pred = np.empty(len(y_perm), dtype=object)
        tested = np.zeros(len(y_perm), dtype=bool)
        for train, test in folds:
            proba, _ = learner.fit_predict_proba(name, random_state, y_perm, train, test, inner, classes)
            pred[test] = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
            tested[test] = True
        truth = np.asarray([str(v) for v in y_perm[tested]], dtype=object)
        out[name] = float(np.mean(pred[tested] == truth))
    return out


def permute_labels(y: NDArray[Any], groups: NDArray[Any] | None, rng: np.random.Generator,
                   within: NDArray[Any] | None = None) -> NDArray[Any]:
    """Labels permuted under the null, keeping the data's structure.

    Inside each block of ``within`` (the subject, under ``loso``; everything when
    ``None``): whole groups swap labels when each group has one label, otherwise rows
    are permuted within their group (or within the block when there are no groups).
    So under ``loso`` every subject keeps its own class counts (of trials, and of rows
    when its trials have equal lengths).
    """
    if within is None:
        return _permute_block(y, groups, rng)
    out = y.copy()
    for block in np.unique(within):
        idx = np.flatnonzero(within == block)
        out[idx] = _permute_block(y[idx], None if groups is None else groups[idx], rng)
    return out


def _permute_block(y: NDArray[Any], groups: NDArray[Any] | None, rng: np.random.Generator) -> NDArray[Any]:
    if groups is None:
        return y[rng.permutation(len(y))]
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


def permutation_scheme(dataset: Dataset, protocol: ProtocolSpec) -> str:
    """How :func:`permute_labels` permutes this dataset under ``protocol``, in words."""
    within = " within subject" if protocol.inner_unit == "subject" and dataset.subjects is not None else ""
    if dataset.groups is None:
        return f"rows{within}"
    constant = all(len(np.unique(dataset.y[dataset.groups == g])) == 1 for g in np.unique(dataset.groups))
    return f"whole trials{within}" if constant else f"rows within trials{within}"


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
    """Everything one evaluation found.

    :meth:`as_json` is the stable core of the ``duygu evaluate`` JSON (``protocol``,
    ``chance``, ``results``, ``leakage_gap``); :meth:`as_full_json` adds what scripts may
    also read: ``main_split``, ``permutation``, ``inner_cv``, ``auto`` and ``fusion``.
    """

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
    main_split: str = ""
    permutation: dict[str, Any] = field(default_factory=dict)
    inner_cv: dict[str, Any] = field(default_factory=dict)
    auto: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

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

    def as_full_json(self) -> dict[str, Any]:
        """:meth:`as_json`, then ``main_split``, ``permutation``, ``inner_cv`` and, when they
        apply, ``auto`` and ``fusion`` (the ``duygu evaluate --json`` document)."""
        out = self.as_json()
        out["main_split"] = self.main_split
        out["permutation"] = dict(self.permutation)
        out["inner_cv"] = dict(self.inner_cv)
        if self.auto is not None:
            out["auto"] = dict(self.auto)
        if self.fusion is not None:
            out["fusion"] = dict(self.fusion)
        return out

    def row(self, classifier: str, split: str) -> dict[str, Any]:
        """The result row of ``classifier`` on ``split``."""
        for r in self.results:
            if r["classifier"] == classifier and r["split"] == split:
                return r
        raise KeyError(f"no result for {classifier} on {split}")

    def main_rows(self) -> list[dict[str, Any]]:
        """The result rows of the protocol's main split (what a choice may be made from)."""
        return [r for r in self.results if r["split"] == self.main_split]


def best_main_row(result: dict[str, Any]) -> dict[str, Any]:
    """The row with the highest balanced accuracy on the protocol's main split of an
    evaluation JSON (never a ``random`` row: that split leaks).

    Raises
    ------
    DataError
        The JSON has no row of its main split.
    """
    main = result.get("main_split") or get_protocol(result["protocol"]).main
    rows = [r for r in result["results"] if r["split"] == main]
    if not rows:
        raise DataError(f"evaluation has no result on its main split {main!r}")
    return max(rows, key=lambda r: r["balanced_accuracy"])


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


def _searches(name: str) -> bool:
    """True when classifier ``name`` runs an inner CV (a grid, calibration or ``auto``)."""
    from models.registry import get_spec

    if name == AUTO:
        return True
    try:
        spec = get_spec(name)
    except DataError:  # a learner's own model (the music LSTM)
        return False
    return bool(spec.grid) or spec.calibrate


def describe_inner_cv(dataset: Dataset, spec: ProtocolSpec, folds: dict[str, Folds],
                      random_state: int) -> tuple[dict[str, Any], str | None]:
    """The inner CV every outer fold's fits use, and a warning when some are not grouped."""
    groups, by = inner_groups(dataset, spec)
    infos: list[InnerCV] = []
    for split_folds in folds.values():
        for train, _ in split_folds:
            infos.append(inner_folds(dataset.y[train], None if groups is None else groups[train],
                                     random_state, by=by)[1])
    fallback = [i for i in infos if not i.grouped]
    out: dict[str, Any] = {"grouped": not fallback, "by": by, "folds": len(infos),
                           "n_splits": sorted({i.n_splits for i in infos})}
    if not fallback:
        return out, None
    # "rows", or the one grouping kept when two could not be crossed ("stimulus")
    kept = "/".join(dict.fromkeys(i.by for i in fallback))
    out.update({"by": kept if len(fallback) == len(infos) else f"{by} ({kept} in {len(fallback)} folds)",
                "reason": fallback[0].reason, "ungrouped_folds": len(fallback)})
    noun = "row" if kept == "rows" else kept
    return out, (f"inner CV falls back to {noun} folds in {len(fallback)} of {len(infos)} outer folds: "
                 f"{fallback[0].reason}")


def run_evaluation(dataset: Dataset, protocol: str = "grouped", classifiers: Sequence[str] | str | None = None,
                   n_permutations: int = 0, n_jobs: int = 1, scheduler: str | None = None,
                   random_state: int = 0, progress: ProgressCallback | None = None,
                   learner: Learner | None = None, permutation_reference: str | None = None,
                   permutations_for: str = "reference") -> EvaluationReport:
    """Evaluate ``classifiers`` on ``dataset`` with ``protocol``.

    Parameters
    ----------
    dataset : Dataset
    protocol : {"paper", "grouped", "loso"}
    classifiers : list of str or "a,b", optional
        Registry names (``auto`` too). Default: the paper's four for ``paper``; every
        feature entry, ``lda`` first, otherwise.
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
        ``progress(0, total)`` before the first work unit, then ``progress(done, total)``
        after each finished one.
    learner : Learner, optional
        What is fitted on the rows (default: registry classifiers on ``dataset.X`` and
        ``dataset.windows``; the music models pass their own).
    permutation_reference : str, optional
        The classifier whose null distribution gives the chance level (default: the
        protocol's, shrinkage LDA). It need not be among ``classifiers``.
    permutations_for : {"reference", "all"}
        ``all`` also permutes every evaluated classifier, for a p-value each.

    Returns
    -------
    EvaluationReport
        With a learner that ``reports_roc_auc``, each result row also holds ``roc_auc``
        (one-vs-rest macro, pooled out-of-fold probabilities; ``None`` when a split's
        test rows miss a class).

    Raises
    ------
    DataError
        Bad data for the protocol (NaN/inf, one class, too few samples per class ...),
        an unknown classifier or reference, or a bad ``permutations_for``.
    ProtocolError
        Unknown protocol.
    """
    import joblib

    t0 = time.perf_counter()
    spec = get_protocol(protocol)
    if classifiers is None:
        classifiers = spec.default_classifiers
    learner = learner if learner is not None else Learner(dataset.X, dataset.windows)
    names = learner.parse(classifiers)
    reference = learner.parse([permutation_reference or spec.reference])[0]
    if n_permutations < 0:
        raise DataError(f"permutations must be >= 0, got {n_permutations}")
    if permutations_for not in PERMUTATIONS_FOR:
        raise DataError(f"permutations_for must be one of {', '.join(PERMUTATIONS_FOR)}, got {permutations_for!r}")
    check_protocol(dataset, spec)
    learner.check([*names, reference])
    classes = dataset.classes
    y = dataset.y
    inner, _ = inner_groups(dataset, spec)
    folds = {s.name: make_folds(s, dataset, y, random_state) for s in spec.splits}
    main_split = next(s for s in spec.splits if s.name == spec.main)
    inner_cv, inner_warning = describe_inner_cv(dataset, spec, folds, random_state)
    warnings_out: list[str] = []
    if inner_warning and any(_searches(n) for n in names):
        warnings_out.append(inner_warning)
        log.warning("%s", inner_warning)
    contact_warning = bad_contact_warning(dataset)
    if contact_warning:
        warnings_out.append(contact_warning)
        log.warning("%s", contact_warning)

    tasks: list[tuple[str, Any]] = []
    for name in names:
        for s in spec.splits:
            for f, (train, test) in enumerate(folds[s.name]):
                tasks.append((f"fold:{name}:{s.name}:{f}", joblib.delayed(_fit_predict)(
                    learner, name, random_state, y, train, test, inner, classes)))
    if n_permutations and reference not in names:
        for f, (train, test) in enumerate(folds[spec.main]):
            tasks.append((f"ref:{f}", joblib.delayed(_fit_predict)(
                learner, reference, random_state, y, train, test, inner, classes)))
    perm_names = [reference, *(n for n in names if n != reference)] if permutations_for == "all" else [reference]
    within = dataset.subjects if spec.inner_unit == "subject" else None
    rng = np.random.default_rng(random_state)
    for p in range(n_permutations):
        y_perm = permute_labels(y, dataset.groups, rng, within)
        for name in perm_names:
            tasks.append((f"perm:{name}:{p}", joblib.delayed(_permutation_accuracies)(
                learner, [name], random_state, dataset, y_perm, main_split, inner)))

    outputs: dict[str, Any] = {}
    total = len(tasks)
    if progress is not None:
        progress(0, total)  # the total is known before the first unit finishes (a first progress line)
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
            proba, tested, accs, chosen = _pool(outputs, f"fold:{name}:{s.name}", folds[s.name], y, classes)
            pred = np.asarray(classes)[np.argmax(proba[tested], axis=1)]
            row: dict[str, Any] = {"classifier": name, "split": s.name}
            row.update(compute_metrics(y[tested], pred, classes))
            if learner.reports_roc_auc:
                row["roc_auc"] = roc_auc(y[tested], proba[tested], classes)
            results.append(row)
            fold_acc[_key(name, s.name)] = accs
            params[_key(name, s.name)] = chosen

    observed_by: dict[str, float] = {r["classifier"]: r["accuracy"] for r in results if r["split"] == spec.main}
    if n_permutations and reference not in observed_by:
        proba, tested, _, _ = _pool(outputs, "ref", folds[spec.main], y, classes)
        observed_by[reference] = float(np.mean(np.asarray(classes)[np.argmax(proba[tested], axis=1)] == y[tested]))
    nulls = {name: [float(outputs[f"perm:{name}:{p}"][name]) for p in range(n_permutations)] for name in perm_names}
    p_values: dict[str, float] = {}
    if n_permutations:
        null = nulls[reference]
        observed = observed_by[reference]
        chance = float(np.mean(null))
        for name in perm_names:
            p_values[name] = (1 + sum(v >= observed_by[name] for v in nulls[name])) / (1 + n_permutations)
        p_value: float | None = p_values[reference]
        method = "permutation"
    else:
        null = []
        observed = observed_by.get(reference, observed_by[names[0]])
        _, counts = np.unique(y, return_counts=True)
        chance = float(counts.max() / counts.sum())
        p_value = None
        method = "majority"
    permutation = {
        "reference": reference, "split": spec.main, "n_permutations": int(n_permutations),
        "scheme": permutation_scheme(dataset, spec), "for": permutations_for,
        "observed": {k: observed_by[k] for k in perm_names if k in observed_by} if n_permutations else {},
        "null_mean": {k: float(np.mean(v)) for k, v in nulls.items()} if n_permutations else {},
        "p_values": p_values,
    }

    gap = None
    gaps: dict[str, float] = {}
    if spec.leakage is not None:
        random_name, grouped_name = spec.leakage
        for name in names:
            acc = {r["split"]: r["accuracy"] for r in results if r["classifier"] == name}
            gaps[name] = acc[random_name] - acc[grouped_name]
        gap = float(np.mean(list(gaps.values())))

    auto = None
    if AUTO in names:
        chosen_main = [c.get("classifier") for c in params[_key(AUTO, spec.main)]]
        auto = {"split": spec.main, "chosen": {str(k): chosen_main.count(k) for k in dict.fromkeys(chosen_main)},
                "candidates": list(_auto_candidates())}
    fusion = None
    if dataset.meta.get("fusion"):
        fusion = {"kind": dataset.meta["fusion"].get("kind"),
                  "grouped_by": split_units(dataset)[1],
                  "stimuli": None if dataset.stimuli is None else len(np.unique(dataset.stimuli))}

    return EvaluationReport(
        protocol=spec.name,
        classes=classes,
        results=results,
        chance=chance,
        chance_method=method,
        p_value=p_value,
        observed=observed,
        reference=(reference, spec.main),
        null_accuracies=null,
        leakage_gap=gap,
        leakage_by_classifier=gaps,
        fold_accuracies=fold_acc,
        chosen_params=params,
        dataset=describe_dataset(dataset),
        elapsed_s=time.perf_counter() - t0,
        random_state=random_state,
        main_split=spec.main,
        permutation=permutation,
        inner_cv=inner_cv,
        auto=auto,
        fusion=fusion,
        warnings=warnings_out,
    )


def _auto_candidates() -> tuple[str, ...]:
    from models.registry import AUTO_CANDIDATES

    return AUTO_CANDIDATES


def _pool(outputs: dict[str, Any], prefix: str, folds: Folds, y: NDArray[Any], classes: list[str]
          ) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[float], list[dict[str, Any]]]:
    """Pooled out-of-fold probabilities of the units ``prefix:<fold>``, which rows were
    tested, the per-fold accuracies and the chosen hyper-parameters."""
    proba = np.full((len(y), len(classes)), np.nan)
    tested = np.zeros(len(y), dtype=bool)
    accs, chosen = [], []
    for f, (_, test) in enumerate(folds):
        p_fold, best = outputs[f"{prefix}:{f}"]
        proba[test] = p_fold
        tested[test] = True
        accs.append(float(np.mean(np.asarray(classes)[np.argmax(p_fold, axis=1)] == y[test])))
        chosen.append(best)
    return proba, tested, accs, chosen


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
        "stimuli": None if dataset.stimuli is None else len(np.unique(dataset.stimuli)),
        "source": dataset.meta.get("source"),
        "preset": dataset.meta.get("preset"),
        "domain": dataset.meta.get("domain"),
        "hash": dataset.data_hash(),
        "windows_lost_to_gaps": int(dataset.meta.get("windows_lost_to_gaps", 0) or 0),
        "trials_with_gaps": int(dataset.meta.get("trials_with_gaps", 0) or 0),
        "trials_with_bad_contact": int(dataset.meta.get("trials_with_bad_contact", 0) or 0),
        "bad_contact_trials": [str(t) for t in dataset.meta.get("bad_contact_trials") or []],
    }


def bad_contact_warning(dataset: Dataset, shown: int = 10) -> str | None:
    """A one-line warning naming the trials recorded with bad contact (the first ``shown``
    ids), or ``None`` when there are none."""
    n = int(dataset.meta.get("trials_with_bad_contact", 0) or 0)
    if n <= 0:
        return None
    ids = [str(t) for t in dataset.meta.get("bad_contact_trials") or []]
    listed = ", ".join(ids[:shown]) + (f", ... ({len(ids) - shown} more)" if len(ids) > shown else "")
    return (f"{n} trial(s) recorded with bad contact" + (f" (ids {listed})" if ids else "")
            + ": some electrodes were off the skin or poorly connected, so their windows may hold noise")


def evaluate(dataset: Dataset, protocol: str = "grouped", classifiers: Sequence[str] | str | None = None,
             n_permutations: int = 0, n_jobs: int = 1, scheduler: str | None = None,
             random_state: int = 0, progress: ProgressCallback | None = None,
             permutation_reference: str | None = None, permutations_for: str = "reference") -> dict[str, Any]:
    """Evaluate and return the ``duygu evaluate --json`` document (:meth:`EvaluationReport.as_full_json`).

    ``{"protocol": str, "chance": float, "results": [{"classifier", "split", "accuracy",
    "balanced_accuracy", "precision", "recall", "f1", "mcc", "confusion"}],
    "leakage_gap": float | None, "main_split", "permutation", "inner_cv", ...}``. See
    :func:`run_evaluation` for the parameters.
    """
    return run_evaluation(dataset, protocol, classifiers, n_permutations, n_jobs, scheduler, random_state,
                          progress, permutation_reference=permutation_reference,
                          permutations_for=permutations_for).as_full_json()


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
    from models.registry import label_of

    head = f"{'Model':<22} {'Split':<22} {'Accuracy %':>10} {'Precision %':>11} {'Recall %':>9} {'F1 %':>7}"
    lines = [f"protocol: {data['protocol']}", head, "-" * len(head)]
    for r in data["results"]:
        lines.append(
            f"{label_of(r['classifier']):<22} {SPLIT_LABELS.get(r['split'], r['split']):<22} "
            f"{100 * r['accuracy']:>10.2f} {100 * r['precision']:>11.2f} {100 * r['recall']:>9.2f} {100 * r['f1']:>7.2f}"
        )
    lines.append("-" * len(head))
    chance_line = f"chance level: {100 * data['chance']:.2f} %"
    if report is not None:
        if report.p_value is not None:
            chance_line += (f" (mean of {len(report.null_accuracies)} label permutations of "
                            f"{report.reference[0]} on {report.reference[1]}, {report.permutation.get('scheme', '')}; "
                            f"observed {100 * report.observed:.2f} %, p = {report.p_value:.3g})")
        else:
            chance_line += " (majority class; no permutations run)"
    lines.append(chance_line)
    if report is not None:
        others = {k: v for k, v in report.permutation.get("p_values", {}).items() if k != report.reference[0]}
        if others:
            lines.append("p-values, each classifier against its own permutations: "
                         + ", ".join(f"{k} {v:.3g}" for k, v in others.items()))
        if report.auto is not None:
            lines.append(f"auto chose on {report.auto['split']}: "
                         + ", ".join(f"{k} in {n} fold(s)" for k, n in report.auto["chosen"].items()))
        inner = report.inner_cv
        if inner:
            lines.append("inner CV: " + (f"grouped by {inner['by']}" if inner.get("grouped")
                                         else f"{inner['by']} ({inner.get('reason')})"))
    if data["leakage_gap"] is not None:
        gap_line = f"leakage gap (random - grouped accuracy): {100 * data['leakage_gap']:+.2f} points"
        if report is not None and report.leakage_by_classifier:
            gap_line += " (" + ", ".join(f"{k} {100 * v:+.1f}" for k, v in report.leakage_by_classifier.items()) + ")"
        lines.append(gap_line)
    return "\n".join(lines)
