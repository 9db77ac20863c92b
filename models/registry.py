"""The classifier registry: every classifier is one :class:`ClassifierSpec` entry.

An entry builds the steps of a scikit-learn :class:`Pipeline` (``StandardScaler ->
estimator`` for feature rows; covariance -> tangent space -> ... for raw windows) and
names a small hyper-parameter grid. :func:`make_classifier` turns an entry (or
``auto``, a choice among the entries) into a :class:`TunedClassifier`, which

* chooses the hyper-parameters by **inner** cross-validation on the rows it is fitted
  on, grouped by the groups it is given (:func:`inner_folds`: the subject under
  ``loso``, the trial under ``grouped``), falling back to stratified row folds only
  when grouping is impossible, and saying so (:class:`InnerCV`);
* scores the candidates on their decisions (balanced accuracy of ``predict``), never
  on calibrated probabilities, and
* calibrates only the chosen model, when the entry asks for it (the SVMs): a sigmoid per
  class is fitted to the chosen candidate's out-of-fold decision scores, which the
  search has already computed on the same grouped folds, so calibration costs no fit
  (:class:`SigmoidCalibrated`).

Adding a classifier means adding one entry to :func:`_specs`.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from acquisition.errors import DataError

Steps = list[tuple[str, Any]]

#: ``--classifiers auto``: choose among the entries marked ``auto`` by inner CV.
AUTO = "auto"
#: Rows a classifier reads: feature vectors, or raw (filtered) windows channels x samples.
FEATURES, WINDOWS = "features", "windows"
#: Folds of the inner cross-validation.
INNER_FOLDS = 3


@dataclass(frozen=True)
class ClassifierSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        The name users type (``--classifiers ann,svm-rbf``).
    label : str
        Human-readable name for tables and reports.
    build : callable
        ``build(random_state) -> steps`` of the pipeline, the last named ``clf``.
    grid : dict
        Hyper-parameter grid of the ``clf`` step; empty means no inner search.
    in_paper : bool
        One of the four classifiers of the EEG paper.
    calibrate : bool
        Fit a sigmoid to the chosen model's out-of-fold decision scores (for
        estimators without probabilities of their own, the SVMs).
    input : {"features", "windows"}
        Feature rows, or raw windows (``Dataset.windows``: the store and DEAP).
    requires : str, optional
        Module the entry needs (an optional dependency); without it the entry is
        listed but refuses to run with a one-line error.
    auto : bool
        A candidate of ``--classifiers auto``.
    """

    name: str
    label: str
    build: Callable[[int], Steps]
    grid: Mapping[str, list[Any]] = field(default_factory=dict)
    in_paper: bool = False
    calibrate: bool = False
    input: str = FEATURES
    requires: str | None = None
    auto: bool = False

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination of the grid (``[{}]`` without a grid), in grid order."""
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in product(*(self.grid[k] for k in keys))]


def _scaled(estimator: Any) -> Steps:
    return [("scale", StandardScaler()), ("clf", estimator)]


def _riemann(rs: int) -> Steps:
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace

    # OAS-shrunk covariances stay positive definite for short windows; the tangent space
    # at the Riemannian mean of the training covariances makes them vectors.
    return [("cov", Covariances(estimator="oas")), ("tangent", TangentSpace(metric="riemann")),
            ("scale", StandardScaler()), ("clf", LogisticRegression(C=1.0, max_iter=2000, random_state=rs))]


def _eegnet(rs: int) -> Steps:
    import torch
    from braindecode import EEGClassifier
    from braindecode.models import EEGNetv4

    torch.manual_seed(rs)
    # channels, samples and classes are read from the data at fit; CPU only; no internal
    # validation split (the engine's folds are the validation)
    return [("clf", IntegerLabels(EEGClassifier(EEGNetv4, max_epochs=30, batch_size=64, lr=1e-3,
                                                optimizer=torch.optim.AdamW, train_split=None, device="cpu",
                                                verbose=0, iterator_train__shuffle=True)))]


class IntegerLabels(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on labels 0..k-1 and float32 rows (torch classifiers take no
    strings); ``classes_`` are the original labels."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> IntegerLabels:
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator.fit(np.asarray(X, dtype=np.float32), codes.astype(np.int64))
        return self

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        proba = np.asarray(self.estimator.predict_proba(np.asarray(X, dtype=np.float32)), dtype=np.float64)
        return proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-300)

    def predict(self, X: Any) -> NDArray[Any]:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _specs() -> tuple[ClassifierSpec, ...]:
    return (
        ClassifierSpec(
            # scikit-learn's defaults (100 ReLU units, Adam, alpha 1e-4, 200 epochs): on the
            # real 3,248-window table they beat the earlier 64-unit L-BFGS net with an alpha
            # grid (0.894 vs 0.878 LOSO) at one seventh of the fits; no grid.
            "ann", "ANN (MLP)",
            lambda rs: _scaled(MLPClassifier(hidden_layer_sizes=(100,), solver="adam", alpha=1e-4,
                                             max_iter=200, random_state=rs)),
            in_paper=True,
        ),
        ClassifierSpec(
            # the paper's polynomial kernel at degree 3 (scikit-learn's default); C on a
            # decade grid is what changes the result on band features
            "svm-poly", "SVM (polynomial)",
            lambda rs: _scaled(SVC(kernel="poly", degree=3, coef0=1.0, random_state=rs)),
            {"C": [0.1, 1.0, 10.0]}, in_paper=True, calibrate=True,
        ),
        ClassifierSpec(
            # gamma "scale" adapts to standardised features; C on a decade grid
            "svm-rbf", "SVM (RBF)",
            lambda rs: _scaled(SVC(kernel="rbf", gamma="scale", random_state=rs)),
            {"C": [1.0, 10.0, 100.0]}, in_paper=True, calibrate=True, auto=True,
        ),
        ClassifierSpec(
            # overlapping windows make near neighbours near copies: small k memorises
            "knn", "KNN",
            lambda rs: _scaled(KNeighborsClassifier()),
            {"n_neighbors": [5, 15, 45]}, in_paper=True, auto=True,
        ),
        ClassifierSpec(
            "logreg", "Logistic regression",
            lambda rs: _scaled(LogisticRegression(max_iter=2000, random_state=rs)),
            {"C": [0.01, 0.1, 1.0]}, auto=True,
        ),
        ClassifierSpec(
            # shrinkage is analytic (Ledoit-Wolf): no grid; the permutation reference
            "lda", "Shrinkage LDA",
            lambda rs: _scaled(ShrinkageLDA()),
            auto=True,
        ),
        ClassifierSpec(
            # no grid: a forest's defaults (sqrt features, full trees) are robust
            "forest", "Random forest",
            lambda rs: _scaled(RandomForestClassifier(n_estimators=100, random_state=rs)),
        ),
        ClassifierSpec(
            # no grid: 100 boosting rounds with L2 0.1 and 31 leaves; early stopping would
            # hold out rows at random (leaky on windows), so it is off
            "hgb", "Gradient boosting",
            # (not an auto candidate: 20x the fit time of the RBF SVM, and no better on band features)
            lambda rs: _scaled(HistGradientBoostingClassifier(max_iter=100, l2_regularization=0.1,
                                                              early_stopping=False, random_state=rs)),
        ),
        ClassifierSpec(
            "riemann", "Riemann tangent space",
            _riemann, input=WINDOWS, requires="pyriemann",
        ),
        ClassifierSpec(
            "eegnet", "EEGNet (braindecode)",
            _eegnet, input=WINDOWS, requires="braindecode",
        ),
    )


def registry() -> dict[str, ClassifierSpec]:
    """All registry entries by name (a new dict on every call)."""
    return {spec.name: spec for spec in _specs()}


#: The registered classifier names, in table order.
CLASSIFIERS: tuple[str, ...] = tuple(spec.name for spec in _specs())

#: The entries that read feature rows (every dataset has them).
FEATURE_CLASSIFIERS: tuple[str, ...] = tuple(spec.name for spec in _specs() if spec.input == FEATURES)

#: The EEG paper's four classifiers.
PAPER_CLASSIFIERS: tuple[str, ...] = tuple(spec.name for spec in _specs() if spec.in_paper)

#: The candidates of ``auto``.
AUTO_CANDIDATES: tuple[str, ...] = tuple(spec.name for spec in _specs() if spec.auto)


def classifier_names() -> list[str]:
    """The registered classifier names, in table order, then ``auto``."""
    return [*CLASSIFIERS, AUTO]


def get_spec(name: str) -> ClassifierSpec:
    """The registry entry called ``name``; :class:`DataError` naming the choices if unknown."""
    specs = registry()
    key = name.strip().lower()
    if key not in specs:
        raise DataError(f"classifier must be one of {', '.join(classifier_names())}, got {name!r}")
    return specs[key]


def label_of(name: str) -> str:
    """The human-readable label of a registry name (``auto`` included)."""
    if name == AUTO:
        return "Auto (inner-CV choice)"
    spec = registry().get(name)
    return spec.label if spec is not None else name


def input_of(name: str) -> str:
    """``features`` or ``windows``: what classifier ``name`` reads (``auto``: features)."""
    return FEATURES if name == AUTO else get_spec(name).input


def parse_classifiers(text: str | Sequence[str] | None) -> list[str]:
    """Parse ``"ann,svm-rbf"`` (or a list) into validated names, in given order.

    ``auto`` is accepted beside the registry names.
    """
    if text is None:
        return list(FEATURE_CLASSIFIERS)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [AUTO if item.strip().lower() == AUTO else get_spec(item).name for item in items if item.strip()]
    if not names:
        raise DataError(f"classifiers must name at least one of {', '.join(classifier_names())}, got {text!r}")
    return list(dict.fromkeys(names))


def check_available(name: str) -> None:
    """Raise :class:`DataError` if entry ``name`` needs a module that is not installed."""
    if name == AUTO:
        return
    spec = get_spec(name)
    if spec.requires and importlib.util.find_spec(spec.requires) is None:
        extra = " (pip install 'duygu[deep]')" if spec.requires == "braindecode" else ""
        raise DataError(f"classifier {name!r} needs the {spec.requires} package, which is not installed{extra}")


# -- inner cross-validation -------------------------------------------------------------
@dataclass(frozen=True)
class InnerCV:
    """How an inner cross-validation was split.

    ``grouped`` is False when the rows had to be split row-wise; ``reason`` then says why.
    ``by`` names the unit (``subject``, ``trial``, ``stimulus``, ``rows``).
    """

    grouped: bool
    by: str
    n_splits: int
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"grouped": self.grouped, "by": self.by, "n_splits": self.n_splits}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


Folds = list[tuple[NDArray[np.intp], NDArray[np.intp]]]


def inner_folds(y: NDArray[Any], groups: NDArray[Any] | None, random_state: int = 0,
                n_splits: int = INNER_FOLDS, by: str = "group") -> tuple[Folds, InnerCV]:
    """Inner folds of rows ``y``: grouped by ``groups`` when possible, else row-wise.

    Grouped (:class:`StratifiedGroupKFold`, shuffled) with k = min(``n_splits``, the
    fewest groups of any class) when that is >= 2; otherwise stratified row folds with
    the reason recorded. No group is ever on both sides of a grouped fold.

    ``groups`` of shape (n, 2) are two groupings kept apart at once (``by`` names them,
    ``"subject×stimulus"``: LOSO on rows that carry stimulus features). Each is cut into
    k folds as above and the folds are crossed: fold (a, b) tests the rows in fold ``a``
    of the first grouping and fold ``b`` of the second, and trains on the rows in neither
    (as the outer LOSO x stimulus folds do), so every row is tested once and no value of
    either grouping is on both sides. When only one of them can be grouped it alone is
    kept apart (``grouped`` False, ``by`` its name, the reason recorded); when neither
    can, row folds.
    """
    y = np.asarray(y)
    if groups is not None and np.ndim(groups) == 2:
        return _crossed_inner_folds(y, np.asarray(groups), random_state, n_splits, by)
    reason: str | None
    if groups is not None:
        groups = np.asarray(groups)
        k, reason = _group_k(y, groups, n_splits, by)
        if k >= 2:
            cv = StratifiedGroupKFold(k, shuffle=True, random_state=random_state)
            folds = [(np.asarray(a), np.asarray(b)) for a, b in cv.split(np.zeros((len(y), 1)), y, groups)
                     if len(b)]
            return folds, InnerCV(True, by, len(folds))
    else:
        reason = f"the rows have no {by} ids to group by (give --group or --subject)"
    return _row_folds(y, random_state, n_splits, reason)


def _row_folds(y: NDArray[Any], random_state: int, n_splits: int, reason: str | None) -> tuple[Folds, InnerCV]:
    """Stratified row folds, the fallback when grouping is impossible (``reason``)."""
    k = max(2, min(n_splits, int(np.unique(y, return_counts=True)[1].min())))
    cv = StratifiedKFold(k, shuffle=True, random_state=random_state)
    folds = [(np.asarray(a), np.asarray(b)) for a, b in cv.split(np.zeros((len(y), 1)), y)]
    return folds, InnerCV(False, "rows", k, reason)


def _group_k(y: NDArray[Any], groups: NDArray[Any], n_splits: int, by: str) -> tuple[int, str | None]:
    """Grouped folds possible for ``groups`` (min(``n_splits``, fewest groups of any
    class)), and why grouping is impossible when that is below 2."""
    per_class = {str(c): len(np.unique(groups[y == c])) for c in np.unique(y)}
    worst = min(per_class, key=per_class.__getitem__)
    k = min(n_splits, per_class[worst])
    if k >= 2:
        return k, None
    return k, (f"class {worst!r} has {per_class[worst]} {by} in the training rows; a grouped inner CV "
               f"needs >= 2 per class")


def _crossed_inner_folds(y: NDArray[Any], groups: NDArray[Any], random_state: int, n_splits: int,
                         by: str) -> tuple[Folds, InnerCV]:
    """:func:`inner_folds` of two groupings, the columns of ``groups`` (``by`` = "a×b")."""
    first_by, second_by = by.split("×", 1) if "×" in by else (by, by)
    first, second = groups[:, 0], groups[:, 1]
    k1, why1 = _group_k(y, first, n_splits, first_by)
    k2, why2 = _group_k(y, second, n_splits, second_by)
    if k1 < 2 or k2 < 2:
        if k1 < 2 and k2 < 2:
            return _row_folds(y, random_state, n_splits, f"{why1}; {why2}")
        # one grouping kept apart alone: better than rows, still recorded as a fallback
        values, kept, why = (second, second_by, why1) if k2 >= 2 else (first, first_by, why2)
        folds, _ = inner_folds(y, values, random_state, n_splits, kept)
        return folds, InnerCV(False, kept, len(folds), f"{why}; only {kept} kept apart")
    X0 = np.zeros((len(y), 1))
    fold_of = []
    for values, k in ((first, k1), (second, k2)):
        index = np.empty(len(y), dtype=np.intp)
        for f, (_, test) in enumerate(StratifiedGroupKFold(k, shuffle=True, random_state=random_state)
                                      .split(X0, y, values)):
            index[test] = f
        fold_of.append(index)
    folds = []
    for a in range(k1):
        for b in range(k2):
            test = np.flatnonzero((fold_of[0] == a) & (fold_of[1] == b))
            if len(test):
                folds.append((np.flatnonzero((fold_of[0] != a) & (fold_of[1] != b)), test))
    return folds, InnerCV(True, by, len(folds))


# -- shrinkage LDA ----------------------------------------------------------------------
def ledoit_wolf_cov(Z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ledoit-Wolf shrunk covariance of centred rows ``Z`` (n, p): ``(1 - s) S + s mu I``
    with ``S = Z'Z / n``, ``mu = trace(S) / p`` and the shrinkage ``s`` that minimises the
    expected squared error (Ledoit & Wolf 2004, their estimates of beta and delta)."""
    n, p = Z.shape
    S = Z.T @ Z / n
    mu = float(np.trace(S)) / p
    Z2 = Z**2
    beta_sum = float(np.sum(Z2.T @ Z2)) / n - float(np.sum(S**2))  # sum_k ||z_k z_k' - S||^2 / n
    delta = float(np.sum(S**2)) - 2.0 * mu * float(np.trace(S)) + p * mu**2  # ||S - mu I||_F^2
    beta = min(beta_sum / (n * p), delta / p)
    shrinkage = 0.0 if delta <= 0 else beta / (delta / p)
    shrinkage = min(max(shrinkage, 0.0), 1.0)
    out = (1.0 - shrinkage) * S
    out[np.diag_indices(p)] += shrinkage * mu
    return out


class ShrinkageLDA(ClassifierMixin, BaseEstimator):
    """Linear discriminant analysis with a Ledoit-Wolf shrunk within-class covariance.

    The model of scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr",
    shrinkage="auto")`` (each class's covariance is shrunk on standardised features and
    weighted by the class prior; the discriminant solves ``cov @ w = mean``), computed
    in a few array operations: it is the permutation reference, fitted thousands of
    times per evaluation, and the library's checks cost more than its arithmetic.
    """

    def fit(self, X: NDArray[np.float64], y: NDArray[Any]) -> ShrinkageLDA:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        classes, inverse = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"ShrinkageLDA needs >= 2 classes, got {len(classes)}")
        priors = np.bincount(inverse) / len(y)
        means = np.empty((len(classes), X.shape[1]))
        cov = np.zeros((X.shape[1], X.shape[1]))
        for k in range(len(classes)):
            Xk = X[inverse == k]
            means[k] = Xk.mean(axis=0)
            Zk = Xk - means[k]
            scale = Zk.std(axis=0)
            scale[scale == 0] = 1.0
            cov += priors[k] * scale[:, None] * ledoit_wolf_cov(Zk / scale) * scale[None, :]
        coef = np.linalg.lstsq(cov, means.T, rcond=None)[0].T
        self.classes_ = classes
        self.priors_ = priors
        self.means_ = means
        self.coef_ = coef
        self.intercept_ = -0.5 * np.sum(means * coef, axis=1) + np.log(priors)
        return self

    def decision_function(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        d = self.decision_function(X)
        d -= d.max(axis=1, keepdims=True)
        e = np.exp(d)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


# -- calibration ------------------------------------------------------------------------
def _decision_matrix(estimator: Any, X: Any, classes: Sequence[Any] | NDArray[Any]) -> NDArray[np.float64]:
    """Decision scores of ``estimator`` as (n, n_classes) in ``classes`` order.

    A binary problem gives one column per class (``-f``, ``f``); a class the estimator
    never saw gets the lowest score of the row minus 1.
    """
    scores = np.asarray(estimator.decision_function(X), dtype=np.float64)
    own = list(estimator.classes_)
    if scores.ndim == 1:
        scores = np.column_stack([-scores, scores])
    out = np.full((scores.shape[0], len(classes)), np.nan)
    index = {str(c): i for i, c in enumerate(classes)}
    for j, c in enumerate(own):
        out[:, index[str(c)]] = scores[:, j]
    if np.isnan(out).any():
        floor = np.nanmin(out, axis=1, keepdims=True) - 1.0
        out = np.where(np.isnan(out), floor, out)
    return out


def _fit_sigmoid(score: NDArray[np.float64], target: NDArray[np.bool_]) -> tuple[float, float]:
    """Platt's sigmoid ``p = 1 / (1 + exp(-(a * score + b)))`` by maximum likelihood, a >= 0.

    Platt's smoothed targets keep the fit finite when the scores separate the classes. A
    negative slope (out-of-fold scores that rank the classes backwards, as happens when
    there is no signal) is not a calibration: the slope is then 0 and ``p`` the prior.
    """
    from scipy.optimize import minimize

    n_pos = float(target.sum())
    n_neg = float(len(target) - n_pos)
    t = np.where(target, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    prior = (n_pos + 1.0) / (len(target) + 2.0)
    b0 = float(np.log(prior / (1.0 - prior)))

    def loss(ab: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        z = ab[0] * score + ab[1]
        log_p = -np.logaddexp(0.0, -z)
        log_q = -np.logaddexp(0.0, z)
        p = np.exp(log_p)
        value = -float(np.sum(t * log_p + (1.0 - t) * log_q))
        grad = p - t
        return value, np.array([float(np.sum(grad * score)), float(np.sum(grad))])

    res = minimize(loss, np.array([0.0, b0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


def sigmoid_proba(scores: NDArray[np.float64], slopes: NDArray[np.float64],
                  intercepts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probabilities from decision scores (n, n_classes): one Platt sigmoid per class,
    normalised to sum to 1 (binary: one sigmoid, the other class its complement)."""
    z = scores * slopes[None, :] + intercepts[None, :]
    p = 1.0 / (1.0 + np.exp(-z))
    if p.shape[1] == 2:
        p = np.column_stack([1.0 - p[:, 1], p[:, 1]])
    return np.asarray(p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300))


class SigmoidCalibrated(ClassifierMixin, BaseEstimator):
    """A fitted estimator with decision scores, and one Platt sigmoid per class.

    Probabilities are the per-class sigmoids of the decision scores, normalised to sum
    to 1 (one-vs-rest, as scikit-learn's ``CalibratedClassifierCV``). Built by
    :class:`TunedClassifier` from out-of-fold scores; not fitted on its own.
    """

    def __init__(self, estimator: Any = None, slopes: Any = None, intercepts: Any = None) -> None:
        self.estimator = estimator
        self.slopes = slopes
        self.intercepts = intercepts

    @property
    def classes_(self) -> NDArray[Any]:
        return np.asarray(self.estimator.classes_)

    def __sklearn_is_fitted__(self) -> bool:
        return self.estimator is not None and self.slopes is not None

    def fit(self, X: Any, y: Any) -> SigmoidCalibrated:  # pragma: no cover - built, never fitted
        raise TypeError("SigmoidCalibrated is built by TunedClassifier from out-of-fold scores")

    def decision_function(self, X: Any) -> NDArray[np.float64]:
        return _decision_matrix(self.estimator, X, self.classes_)

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        return sigmoid_proba(self.decision_function(X), np.asarray(self.slopes), np.asarray(self.intercepts))

    def predict(self, X: Any) -> NDArray[Any]:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def calibrate(estimator: Any, oof_scores: NDArray[np.float64], y: NDArray[Any]) -> SigmoidCalibrated:
    """Wrap fitted ``estimator`` with sigmoids fitted on its out-of-fold ``oof_scores``
    (columns in ``estimator.classes_`` order, rows aligned with ``y``)."""
    classes = np.asarray(estimator.classes_)
    fits = [_fit_sigmoid(oof_scores[:, j], np.asarray(y) == c) for j, c in enumerate(classes)]
    return SigmoidCalibrated(estimator, np.array([a for a, _ in fits]), np.array([b for _, b in fits]))


# -- the tuned classifier ---------------------------------------------------------------
def make_pipeline(name: str, random_state: int = 0, params: Mapping[str, Any] | None = None) -> Pipeline:
    """The pipeline of entry ``name`` with its default (or the given ``clf``) hyper-parameters."""
    check_available(name)
    pipe = Pipeline(get_spec(name).build(random_state))
    if params:
        pipe.set_params(**{f"clf__{k}": v for k, v in params.items()})
    return pipe


class TunedClassifier:
    """Registry entries with inner hyper-parameter search and calibration of the chosen one.

    Parameters
    ----------
    names : list of str
        One registry name, or the candidates of ``auto``.
    random_state : int
        Seed of the estimators and of the inner folds.
    n_splits : int
        Inner folds.

    After :meth:`fit`: ``pipeline_`` (the fitted final :class:`Pipeline`), ``chosen_``
    (the entry), ``best_params_``, ``inner_cv_`` (:class:`InnerCV`, ``None`` when there
    was nothing to search or calibrate) and ``scores_`` (candidate -> inner balanced
    accuracy).
    """

    def __init__(self, names: Sequence[str], random_state: int = 0, n_splits: int = INNER_FOLDS,
                 auto: bool = False) -> None:
        self.names = list(names)
        self.random_state = random_state
        self.n_splits = n_splits
        self.auto = auto

    def _candidates(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, params) for name in self.names for params in get_spec(name).candidates()]

    def fit(self, X: Any, y: NDArray[Any], groups: NDArray[Any] | None = None, group_kind: str = "group") -> TunedClassifier:
        """Search, choose, fit the chosen candidate on all rows and calibrate it if asked.

        Raises
        ------
        DataError
            Every candidate failed on the inner folds, or the final fit failed.
        """
        y = np.asarray(y)
        candidates = self._candidates()
        needs_scores = any(get_spec(n).calibrate for n, _ in candidates)
        self.inner_cv_: InnerCV | None = None
        self.scores_: dict[str, float] = {}
        oof: dict[int, NDArray[np.float64]] = {}
        best = 0
        if len(candidates) > 1 or needs_scores:
            folds, self.inner_cv_ = inner_folds(y, groups, self.random_state, self.n_splits, group_kind)
            classes = np.unique(y)
            scores = []
            for i, (name, params) in enumerate(candidates):
                score, oof_i = self._score(name, params, X, y, folds, classes, get_spec(name).calibrate)
                scores.append(score)
                self.scores_[_describe(name, params, self.auto)] = score
                if oof_i is not None:
                    oof[i] = oof_i
            if len(candidates) > 1:
                finite = [s for s in scores if np.isfinite(s)]
                if not finite:
                    raise DataError(f"every candidate of {', '.join(self.names)} failed on the inner folds "
                                    f"of {len(y)} rows")
                best = int(np.nanargmax(np.where(np.isfinite(scores), scores, -np.inf)))
        name, params = candidates[best]
        pipe = _fit(make_pipeline(name, self.random_state, params), X, y)
        if get_spec(name).calibrate:
            if best not in oof:
                raise DataError(f"{name} cannot be calibrated: its inner folds failed on {len(y)} rows")
            clf = pipe.steps[-1][1]
            own = [np.flatnonzero(np.unique(y) == c)[0] for c in clf.classes_]
            pipe.steps[-1] = ("clf", calibrate(clf, oof[best][:, own], y))
        self.pipeline_ = pipe
        self.chosen_ = name
        self.best_params_ = ({"classifier": name} if self.auto else {}) | dict(params)
        return self

    def _score(self, name: str, params: dict[str, Any], X: Any, y: NDArray[Any], folds: Folds,
               classes: NDArray[Any], keep_scores: bool) -> tuple[float, NDArray[np.float64] | None]:
        pred = np.empty(len(y), dtype=object)
        scores = np.zeros((len(y), len(classes))) if keep_scores else None
        for train, test in folds:
            try:
                pipe = _fit(make_pipeline(name, self.random_state, params), X[train], y[train])
                if scores is not None:
                    scores[test] = _decision_matrix(pipe, X[test], classes)
                    pred[test] = classes[np.argmax(scores[test], axis=1)]
                else:
                    pred[test] = pipe.predict(X[test])
            except (DataError, ValueError):  # e.g. more neighbours than rows in a small fold
                return float("nan"), None
        return float(balanced_accuracy_score(y.astype(str), pred.astype(str))), scores

    @property
    def classes_(self) -> NDArray[Any]:
        return np.asarray(self.pipeline_.classes_)

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        return np.asarray(self.pipeline_.predict_proba(X), dtype=np.float64)

    def predict(self, X: Any) -> NDArray[Any]:
        return np.asarray(self.pipeline_.predict(X))


def _describe(name: str, params: Mapping[str, Any], auto: bool) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in params.items())
    return (f"{name}({inner})" if auto else inner) or name


@functools.lru_cache(maxsize=1)
def _thread_pools() -> Any:
    """This process's BLAS/OpenMP pools, found once: ``threadpool_limits()`` looks for them
    again on every call (about 6 ms with this environment's libraries loaded, as much as an
    LDA fit), and a LOSO evaluation with permutations fits thousands of models."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _fit(pipe: Pipeline, X: Any, y: NDArray[Any]) -> Pipeline:
    """Fit with single-threaded BLAS and quiet convergence warnings; ValueError -> DataError.

    Parallelism comes from the evaluation's work units, and oversubscribed BLAS threads
    are many times slower on a busy machine.
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(), _thread_pools().limit(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            pipe.fit(X, y)
        except ValueError as exc:
            reason = " ".join(str(exc).split())
            raise DataError(f"{type(pipe.steps[-1][1]).__name__} cannot be fitted on {len(y)} rows: "
                            f"{reason[:300]}") from exc
    return pipe


def make_classifier(name: str, random_state: int = 0) -> TunedClassifier:
    """The tuned classifier of registry entry ``name`` (or ``auto``), ready to
    ``fit(X, y, groups)``.

    Raises
    ------
    DataError
        If ``name`` is not registered, or needs a package that is not installed.
    """
    if name == AUTO:
        return TunedClassifier(list(AUTO_CANDIDATES), random_state, auto=True)
    check_available(name)
    return TunedClassifier([get_spec(name).name], random_state)


def final_pipeline(fitted: Any) -> Pipeline:
    """The fitted plain :class:`Pipeline` inside ``fitted`` (the chosen, calibrated model)."""
    if isinstance(fitted, TunedClassifier):
        return fitted.pipeline_
    if isinstance(fitted, Pipeline):
        return fitted
    raise TypeError(f"expected a Pipeline or TunedClassifier, got {type(fitted).__name__}")


def best_params(fitted: Any) -> dict[str, Any]:
    """Hyper-parameters the inner search chose (``classifier`` too for ``auto``)."""
    if isinstance(fitted, TunedClassifier):
        return dict(fitted.best_params_)
    return {}


def fit_classifier(estimator: TunedClassifier | Pipeline, X: Any, y: NDArray[Any],
                   groups: NDArray[Any] | None = None, group_kind: str = "group") -> Any:
    """Fit ``estimator`` from :func:`make_classifier` (``groups`` reach the inner CV only)
    or a plain pipeline from :func:`make_pipeline`.

    Candidates that cannot be fitted on a small inner fold (e.g. more neighbours than
    rows) score NaN and are not chosen; if every candidate fails, or the final fit
    fails, the error is a :class:`DataError`.
    """
    if isinstance(estimator, TunedClassifier):
        return estimator.fit(X, np.asarray(y), groups, group_kind)
    return _fit(estimator, X, np.asarray(y))
