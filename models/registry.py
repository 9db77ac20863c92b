"""The classifier registry: every classifier is one :class:`ClassifierSpec` entry.

Each entry builds ``StandardScaler -> estimator`` as a scikit-learn :class:`Pipeline`;
when the entry has a hyper-parameter grid, the pipeline is wrapped in a
:class:`~sklearn.model_selection.GridSearchCV` whose inner cross-validation is grouped
(by trial) whenever groups are passed to ``fit`` and stratified otherwise (see
:class:`InnerCV`). Adding a classifier means adding one entry to :func:`_specs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from acquisition.errors import DataError


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
        ``build(random_state) -> estimator`` (the final step; the scaler is added).
    grid : dict
        Hyper-parameter grid of the estimator step (keys without the pipeline's
        ``clf__`` prefix); empty means no inner search.
    in_paper : bool
        One of the four classifiers of the EEG paper.
    """

    name: str
    label: str
    build: Callable[[int], BaseEstimator]
    grid: Mapping[str, list[Any]] = field(default_factory=dict)
    in_paper: bool = False


def _calibrated(svm: SVC, random_state: int) -> CalibratedClassifierCV:
    # Platt scaling on 3 shuffled internal folds, one SVM refit on all data: class
    # probabilities for live predictions (SVC(probability=True) is deprecated in
    # scikit-learn 1.9). Contiguous folds over trial-ordered rows can fit an inverted
    # sigmoid when the signal is weak (below-chance out-of-fold scores), which flips
    # every prediction; shuffled folds keep the sigmoid increasing.
    cv = StratifiedKFold(3, shuffle=True, random_state=random_state)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=cv, ensemble=False)


def _specs() -> tuple[ClassifierSpec, ...]:
    return (
        ClassifierSpec(
            "ann", "ANN (MLP)",
            lambda rs: MLPClassifier(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=400,
                                     random_state=rs),
            {"alpha": [1e-3, 1e-1, 1.0]}, in_paper=True,
        ),
        ClassifierSpec(
            "svm-poly", "SVM (polynomial)",
            lambda rs: _calibrated(SVC(kernel="poly", coef0=1.0, random_state=rs), rs),
            {"estimator__degree": [2, 3], "estimator__C": [0.1, 1.0, 10.0]}, in_paper=True,
        ),
        ClassifierSpec(
            "svm-rbf", "SVM (RBF)",
            lambda rs: _calibrated(SVC(kernel="rbf", gamma="scale", random_state=rs), rs),
            {"estimator__C": [0.1, 1.0, 10.0, 100.0]}, in_paper=True,
        ),
        ClassifierSpec(
            "knn", "KNN",
            lambda rs: KNeighborsClassifier(),
            {"n_neighbors": [3, 7, 15]}, in_paper=True,
        ),
        ClassifierSpec(
            "logreg", "Logistic regression",
            lambda rs: LogisticRegression(max_iter=2000, random_state=rs),
            {"C": [0.01, 0.1, 1.0, 10.0]},
        ),
        ClassifierSpec(
            "lda", "Shrinkage LDA",
            lambda rs: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        ),
        ClassifierSpec(
            "forest", "Random forest",
            # no grid: a forest's defaults (sqrt features, full trees) are robust
            lambda rs: RandomForestClassifier(n_estimators=100, random_state=rs),
        ),
    )


def registry() -> dict[str, ClassifierSpec]:
    """All registry entries by name (a new dict on every call)."""
    return {spec.name: spec for spec in _specs()}


#: The registered classifier names, in table order.
CLASSIFIERS: tuple[str, ...] = tuple(spec.name for spec in _specs())

#: The EEG paper's four classifiers.
PAPER_CLASSIFIERS: tuple[str, ...] = tuple(spec.name for spec in _specs() if spec.in_paper)


def classifier_names() -> list[str]:
    """The registered classifier names, in table order."""
    return list(CLASSIFIERS)


def get_spec(name: str) -> ClassifierSpec:
    """The registry entry called ``name``; :class:`DataError` naming the choices if unknown."""
    specs = registry()
    key = name.strip().lower()
    if key not in specs:
        raise DataError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {name!r}")
    return specs[key]


def parse_classifiers(text: str | Sequence[str] | None) -> list[str]:
    """Parse ``"ann,svm-rbf"`` (or a list) into validated registry names, in given order."""
    if text is None:
        return list(CLASSIFIERS)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [get_spec(item).name for item in items if item.strip()]
    if not names:
        raise DataError(f"classifiers must name at least one of {', '.join(CLASSIFIERS)}, got {text!r}")
    return list(dict.fromkeys(names))


class InnerCV:
    """Inner cross-validation for hyper-parameter search.

    Grouped (:class:`StratifiedGroupKFold`) when ``split`` gets groups with at least
    ``n_splits`` groups in every class, stratified (:class:`StratifiedKFold`)
    otherwise. The number of folds shrinks to what the smallest class allows (>= 2).
    """

    def __init__(self, n_splits: int = 3, random_state: int = 0) -> None:
        self.n_splits = n_splits
        self.random_state = random_state

    def _splitter(self, y: ArrayLike, groups: ArrayLike | None) -> Any:
        y = np.asarray(y)
        _, counts = np.unique(y, return_counts=True)
        if groups is not None:
            groups = np.asarray(groups)
            per_class = [len(np.unique(groups[y == c])) for c in np.unique(y)]
            k = min(self.n_splits, min(per_class))
            if k >= 2:
                return StratifiedGroupKFold(k, shuffle=True, random_state=self.random_state)
        k = max(2, min(self.n_splits, int(counts.min())))
        return StratifiedKFold(k, shuffle=True, random_state=self.random_state)

    def split(self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        splitter = self._splitter(y, groups)
        if isinstance(splitter, StratifiedGroupKFold):
            return splitter.split(X, y, groups)
        return splitter.split(X, y)

    def get_n_splits(self, X: ArrayLike | None = None, y: ArrayLike | None = None,
                     groups: ArrayLike | None = None) -> int:
        if y is None:
            return self.n_splits
        return int(self._splitter(y, groups).get_n_splits())


def make_pipeline(name: str, random_state: int = 0) -> Pipeline:
    """``StandardScaler -> estimator`` of entry ``name`` with default hyper-parameters."""
    spec = get_spec(name)
    return Pipeline([("scale", StandardScaler()), ("clf", spec.build(random_state))])


def make_classifier(name: str, random_state: int = 0) -> BaseEstimator:
    """The estimator of registry entry ``name``, ready to ``fit(X, y[, groups=...])``.

    Parameters
    ----------
    name : str
        A name from :data:`CLASSIFIERS`.
    random_state : int
        Seed of the estimator and of the inner cross-validation.

    Returns
    -------
    estimator
        A :class:`Pipeline` (entries without a grid) or a :class:`GridSearchCV` over
        the pipeline whose inner CV is grouped when ``fit`` receives ``groups``.

    Raises
    ------
    DataError
        If ``name`` is not registered.
    """
    spec = get_spec(name)
    pipe = make_pipeline(name, random_state)
    if not spec.grid:
        return pipe
    grid = {f"clf__{key}": list(values) for key, values in spec.grid.items()}
    return GridSearchCV(pipe, grid, cv=InnerCV(3, random_state), scoring="balanced_accuracy",
                        n_jobs=1, refit=True, error_score=np.nan)


def final_pipeline(fitted: BaseEstimator) -> Pipeline:
    """The fitted plain :class:`Pipeline` inside ``fitted`` (the refit best estimator)."""
    if isinstance(fitted, GridSearchCV):
        return fitted.best_estimator_
    if isinstance(fitted, Pipeline):
        return fitted
    raise TypeError(f"expected a Pipeline or GridSearchCV, got {type(fitted).__name__}")


def best_params(fitted: BaseEstimator) -> dict[str, Any]:
    """Hyper-parameters the inner search chose (empty for entries without a grid)."""
    if isinstance(fitted, GridSearchCV):
        return {k.removeprefix("clf__"): v for k, v in fitted.best_params_.items()}
    return {}


def fit_classifier(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray,
                   groups: np.ndarray | None = None) -> BaseEstimator:
    """Fit ``estimator`` from :func:`make_classifier`; ``groups`` reach the inner CV only.

    BLAS runs single-threaded during the fit: parallelism comes from the evaluation's
    work units, and oversubscribed BLAS threads are many times slower on a busy machine.
    Grid candidates that cannot be fitted on a small inner fold (e.g. more neighbours
    than rows) score NaN and are not chosen; if every candidate fails, the error is a
    :class:`DataError`.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", message="One or more of the test scores are non-finite")
        warnings.filterwarnings("ignore", message="Scoring failed")
        try:
            if isinstance(estimator, GridSearchCV):
                estimator.fit(X, y, groups=groups)
            else:
                estimator.fit(X, y)
        except ValueError as exc:
            name = type(estimator.estimator if isinstance(estimator, GridSearchCV) else estimator).__name__
            reason = " ".join(str(exc).split())
            raise DataError(f"{name} cannot be fitted on {len(y)} rows: {reason[:300]}") from exc
    return estimator
