"""Class probabilities of a few rows, fast: the fitted registry pipelines, precomputed.

A live update predicts one row every 0.25 s. Called through scikit-learn, most of that
time goes to input validation, parameter checks, thread-pool set-up and, for forests and
boosting, one Python call per tree. :func:`compile_pipeline` reads the fitted
attributes once and returns a :class:`CompiledPipeline` whose ``predict_proba`` does only
the arithmetic:

* ``StandardScaler``: ``(x - mean) / scale``;
* shrinkage LDA, logistic regression, the MLP: their linear maps and activations;
* SVMs (calibrated by :class:`~models.registry.SigmoidCalibrated`): the kernel against the
  support vectors, the one-vs-one decisions as one matrix product, scikit-learn's
  one-vs-rest transform, then the calibration's sigmoids;
* KNN: brute-force distances to the training rows (uniform or distance weights);
* random forest and gradient boosting: every tree walked at once, one array step per
  level, instead of one call per tree;
* pyriemann's OAS covariances and Riemannian tangent space: batched, with the
  reference's inverse square root computed once;
* a torch model (EEGNet through skorch): its module's forward pass in inference mode;
* any other step: its own method, under scikit-learn's ``config_context(assume_finite=True,
  skip_parameter_validation=True)``.

Every compiled pipeline is checked against the pipeline itself on probe rows when it is
built; if they differ (another scikit-learn version laying out its attributes otherwise,
say), the pipeline's own ``predict_proba`` is used and :attr:`CompiledPipeline.fast` says
so. Rows must be finite: the live path checks them where they are made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Array = NDArray[np.float64]
Step = Callable[[Any], Any]

#: Largest difference between compiled and reference probabilities accepted at build
#: time, for float64 rows (features) and float32 rows (raw windows: scikit-learn's OAS then
#: computes the covariance in float32, the compiled form in float64 -- the difference is
#: the reference's rounding).
TOLERANCE = 1e-7
TOLERANCE_FLOAT32 = 1e-5


def _config() -> Any:
    import sklearn

    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


def _softmax(z: Array) -> Array:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _expit_pair(z: Array) -> Array:
    """(n,) scores -> (n, 2) probabilities of class 0 and class 1."""
    p = 1.0 / (1.0 + np.exp(-z))
    return np.column_stack([1.0 - p, p])


# -- transforms ----------------------------------------------------------------------------
def _scaler(step: Any) -> Step:
    mean = None if step.mean_ is None else np.asarray(step.mean_, dtype=np.float64)
    scale = None if step.scale_ is None else np.asarray(step.scale_, dtype=np.float64)

    def scale_rows(X: Any) -> Array:
        X = np.array(X, dtype=np.float64)  # a copy: the caller's rows stay as they are
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return scale_rows


def _covariances(step: Any) -> Step:
    """pyriemann's ``Covariances(estimator="oas")``: scikit-learn's OAS shrinkage of each
    window's (biased) covariance, batched."""
    if step.estimator != "oas" or getattr(step, "kwds", None):
        raise NotImplementedError(f"covariance estimator {step.estimator!r}")

    def covariances(X: Any) -> Array:
        x = np.asarray(X, dtype=np.float64)
        x = x - x.mean(axis=2, keepdims=True)
        n_times, n_ch = x.shape[2], x.shape[1]
        emp = x @ x.transpose(0, 2, 1) / n_times
        alpha = np.mean(emp**2, axis=(1, 2))
        mu = np.trace(emp, axis1=1, axis2=2) / n_ch
        num = alpha + mu**2
        den = (n_times + 1) * (alpha - mu**2 / n_ch)
        with np.errstate(divide="ignore", invalid="ignore"):
            shrinkage = np.where(den == 0, 1.0, np.minimum(num / den, 1.0))
        out = (1.0 - shrinkage)[:, None, None] * emp
        out[:, np.arange(n_ch), np.arange(n_ch)] += (shrinkage * mu)[:, None]
        return np.asarray(out)

    return covariances


def _tangent_space(step: Any) -> Step:
    """pyriemann's ``TangentSpace(metric="riemann")`` at its fitted reference:
    ``upper(logm(Cref^-1/2 C Cref^-1/2))``, with ``Cref^-1/2`` computed once."""
    if step.metric != "riemann" or step.tsupdate:
        raise NotImplementedError(f"tangent space metric {step.metric!r}")
    try:
        from pyriemann.geometry.base import invsqrtm
    except ImportError:  # pyriemann < 0.12
        from pyriemann.utils.base import invsqrtm

    cm12 = np.asarray(invsqrtm(np.asarray(step.reference_, dtype=np.float64)))
    n = cm12.shape[0]
    rows, cols = np.triu_indices(n)
    coeffs = np.where(rows == cols, 1.0, np.sqrt(2.0))

    def tangent(X: Any) -> Array:
        m = cm12 @ np.asarray(X, dtype=np.float64) @ cm12
        w, v = np.linalg.eigh(m)
        logm = v @ (np.log(w)[..., None] * v.transpose(0, 2, 1))
        return np.asarray(coeffs * logm[:, rows, cols])

    return tangent


def _transform(step: Any) -> tuple[Step, str]:
    from sklearn.preprocessing import StandardScaler

    name = type(step).__name__
    try:
        if isinstance(step, StandardScaler):
            return _scaler(step), name
        module = type(step).__module__
        if module.startswith("pyriemann.") and name == "Covariances":
            return _covariances(step), name
        if module.startswith("pyriemann.") and name == "TangentSpace":
            return _tangent_space(step), name
    except (NotImplementedError, AttributeError, ImportError) as exc:
        log.info("no compiled form of %s (%s): its own transform is used", name, exc)
    return _generic_transform(step), f"{name} (its own transform)"


def _generic_transform(step: Any) -> Step:
    def transform(X: Any) -> Any:
        with _config():
            return step.transform(X)

    return transform


# -- final estimators: decision scores ------------------------------------------------------
def _svc_decision(svc: Any) -> Callable[[Array], Array]:
    """SVC's ``decision_function`` (one-vs-rest shape) from its support vectors."""
    kernel = svc.kernel
    if kernel not in ("rbf", "poly", "linear", "sigmoid") or getattr(svc, "_sparse", False) \
            or svc.decision_function_shape != "ovr" or getattr(svc, "break_ties", False):
        raise NotImplementedError(f"SVC with kernel {kernel!r}")
    sv = np.ascontiguousarray(svc.support_vectors_, dtype=np.float64)
    sv_sq = np.einsum("ij,ij->i", sv, sv)
    gamma, coef0, degree = float(svc._gamma), float(svc.coef0), int(svc.degree)
    n_classes = len(svc.classes_)
    dual = np.asarray(svc.dual_coef_, dtype=np.float64)
    intercept = np.asarray(svc.intercept_, dtype=np.float64)
    if n_classes == 2:
        coef = dual[:1]  # scikit-learn keeps the binary signs flipped already
    else:
        # one row per pair (i, j), i < j: libsvm's layout of the one-vs-one coefficients
        starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
        pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
        coef = np.zeros((len(pairs), len(sv)))
        for p, (i, j) in enumerate(pairs):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            coef[p, si] = dual[j - 1, si]
            coef[p, sj] = dual[i, sj]
        wins_i = np.zeros((len(pairs), n_classes))
        wins_j = np.zeros((len(pairs), n_classes))
        for p, (i, j) in enumerate(pairs):
            wins_i[p, i] = 1.0
            wins_j[p, j] = 1.0
        conf = wins_i - wins_j
    coef_t = np.ascontiguousarray(coef.T)

    def decision(X: Array) -> Array:
        dot = X @ sv.T
        if kernel == "rbf":
            d2 = np.einsum("ij,ij->i", X, X)[:, None] + sv_sq[None, :] - 2.0 * dot
            np.maximum(d2, 0.0, out=d2)
            K = np.exp(-gamma * d2)
        elif kernel == "poly":
            K = (gamma * dot + coef0) ** degree
        elif kernel == "sigmoid":
            K = np.tanh(gamma * dot + coef0)
        else:
            K = dot
        dec = K @ coef_t + intercept
        if n_classes == 2:
            return np.asarray(dec[:, 0])
        # scikit-learn's one-vs-one -> one-vs-rest: votes plus bounded summed confidences
        votes = (dec >= 0) @ wins_i + (dec < 0) @ wins_j
        summed = dec @ conf
        return np.asarray(votes + summed / (3.0 * (np.abs(summed) + 1.0)))

    return decision


def _linear_decision(est: Any) -> Callable[[Array], Array]:
    coef_t = np.ascontiguousarray(np.asarray(est.coef_, dtype=np.float64).T)
    intercept = np.asarray(est.intercept_, dtype=np.float64)

    def decision(X: Array) -> Array:
        d = X @ coef_t + intercept
        return d[:, 0] if d.shape[1] == 1 else d

    return decision


def _decision(est: Any) -> Callable[[Array], Array]:
    from sklearn.svm import SVC

    if isinstance(est, SVC):
        return _svc_decision(est)
    from sklearn.linear_model import LogisticRegression

    from models.registry import ShrinkageLDA

    if isinstance(est, LogisticRegression | ShrinkageLDA):
        return _linear_decision(est)
    raise NotImplementedError(type(est).__name__)


# -- final estimators: probabilities ---------------------------------------------------------
def _calibrated(est: Any) -> Step:
    from models.registry import sigmoid_proba

    decision = _decision(est.estimator)
    slopes = np.asarray(est.slopes, dtype=np.float64)
    intercepts = np.asarray(est.intercepts, dtype=np.float64)
    own = [str(c) for c in est.estimator.classes_]
    if own != [str(c) for c in est.classes_]:
        raise NotImplementedError("calibrated classes in another order")

    def proba(X: Array) -> Array:
        scores = decision(X)
        if scores.ndim == 1:  # binary: one column per class, as SigmoidCalibrated builds it
            scores = np.column_stack([-scores, scores])
        return sigmoid_proba(scores, slopes, intercepts)

    return proba


def _logistic(est: Any) -> Step:
    decision = _linear_decision(est)

    def proba(X: Array) -> Array:
        d = decision(X)
        return _expit_pair(d) if d.ndim == 1 else _softmax(d)

    return proba


def _mlp(est: Any) -> Step:
    acts: dict[str, Callable[[Array], Array]] = {
        "relu": lambda a: np.maximum(a, 0.0, out=a),
        "tanh": lambda a: np.tanh(a, out=a),
        "logistic": lambda a: np.divide(1.0, 1.0 + np.exp(-a), out=a),
        "identity": lambda a: a,
    }
    hidden = acts[est.activation]
    weights = [np.asarray(w, dtype=np.float64) for w in est.coefs_]
    biases = [np.asarray(b, dtype=np.float64) for b in est.intercepts_]
    out = est.out_activation_
    if out not in ("softmax", "logistic"):
        raise NotImplementedError(f"MLP output {out!r}")

    def proba(X: Array) -> Array:
        a = X
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            a = a @ w + b
            if k < len(weights) - 1:
                a = hidden(a)
        if out == "softmax":
            return _softmax(a)
        return _expit_pair(a[:, 0]) if a.shape[1] == 1 else 1.0 / (1.0 + np.exp(-a))

    return proba


def _knn(est: Any) -> Step:
    if est.effective_metric_ != "euclidean" or est.weights not in ("uniform", "distance") \
            or getattr(est, "outputs_2d_", False):
        raise NotImplementedError(f"KNN with metric {est.effective_metric_!r}, weights {est.weights!r}")
    fit_x = np.ascontiguousarray(est._fit_X, dtype=np.float64)
    fit_sq = np.einsum("ij,ij->i", fit_x, fit_x)
    codes = np.asarray(est._y, dtype=np.intp)
    k = int(est.n_neighbors)
    n_classes = len(est.classes_)
    weighted = est.weights == "distance"

    def proba(X: Array) -> Array:
        d2 = fit_sq[None, :] - 2.0 * (X @ fit_x.T) + np.einsum("ij,ij->i", X, X)[:, None]
        np.maximum(d2, 0.0, out=d2)
        near = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out = np.zeros((len(X), n_classes))
        rows = np.repeat(np.arange(len(X)), k)
        if weighted:
            dist = np.sqrt(np.take_along_axis(d2, near, axis=1))
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = ~np.isfinite(w)
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), w)
            np.add.at(out, (rows, codes[near].ravel()), w.ravel())
        else:
            np.add.at(out, (rows, codes[near].ravel()), 1.0)
        out /= out.sum(axis=1, keepdims=True)
        return out

    return proba


class _Forest:
    """Every tree of an ensemble in flat arrays, walked level by level for all at once.

    A leaf points to itself (threshold +inf), so ``depth`` steps reach every leaf.
    """

    def __init__(self, trees: list[tuple[Any, Any, Any, Any, Any]], depth: int) -> None:
        offset = 0
        feature, threshold, left, right, leaf, roots = [], [], [], [], [], []
        for feat, thr, lo, hi, is_leaf in trees:
            idx = np.arange(len(feat)) + offset
            roots.append(offset)
            feature.append(np.where(is_leaf, 0, feat))
            threshold.append(np.where(is_leaf, np.inf, thr))
            left.append(np.where(is_leaf, idx, lo + offset))
            right.append(np.where(is_leaf, idx, hi + offset))
            leaf.append(is_leaf)
            offset += len(feat)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold).astype(np.float64)
        self.left = np.concatenate(left).astype(np.intp)
        self.right = np.concatenate(right).astype(np.intp)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = int(depth)

    def leaves(self, X: Array) -> NDArray[np.intp]:
        """(n_rows, n_trees) node index of the leaf each row reaches in each tree."""
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        for _ in range(self.depth):
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node


def _random_forest(est: Any) -> Step:
    from sklearn.tree._tree import TREE_LEAF

    trees, values = [], []
    n_classes = len(est.classes_)
    depth = 0
    for tree in est.estimators_:
        t = tree.tree_
        is_leaf = t.children_left == TREE_LEAF
        trees.append((t.feature, t.threshold, t.children_left, t.children_right, is_leaf))
        v = np.asarray(t.value[:, 0, :n_classes], dtype=np.float64)
        norm = v.sum(axis=1, keepdims=True)
        norm[norm == 0.0] = 1.0
        values.append(v / norm)
        depth = max(depth, int(t.max_depth))
    forest = _Forest(trees, depth)
    value = np.concatenate(values)
    n_trees = len(est.estimators_)

    def proba(X: Array) -> Array:
        x32 = np.asarray(X, dtype=np.float32).astype(np.float64)  # the trees compare float32 rows
        return np.asarray(value[forest.leaves(x32)].sum(axis=1) / n_trees)

    return proba


def _hist_boosting(est: Any) -> Step:
    if getattr(est, "_preprocessor", None) is not None or (
            getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_)):
        raise NotImplementedError("gradient boosting with categorical features")
    per_iteration = int(est.n_trees_per_iteration_)
    trees, values, columns = [], [], []
    depth = 0
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise NotImplementedError("categorical split")
            is_leaf = nodes["is_leaf"].astype(bool)
            trees.append((nodes["feature_idx"], nodes["num_threshold"], nodes["left"], nodes["right"], is_leaf))
            values.append(np.where(is_leaf, nodes["value"], 0.0))
            columns.append(np.full(len(nodes), k))
            depth = max(depth, int(nodes["depth"].max()))
    forest = _Forest(trees, depth)
    value = np.concatenate(values).astype(np.float64)
    column = np.concatenate(columns)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(1, per_iteration)
    one_hot = np.zeros((len(value), per_iteration))
    one_hot[np.arange(len(value)), column] = value  # each leaf's value in its class's column

    def proba(X: Array) -> Array:
        leaves = forest.leaves(np.asarray(X, dtype=np.float64))
        raw = baseline + one_hot[leaves].sum(axis=1)
        return _expit_pair(raw[:, 0]) if per_iteration == 1 else _softmax(raw)

    return proba


def _torch_module(est: Any) -> Step:
    """A braindecode/skorch classifier behind :class:`~models.registry.IntegerLabels`: its
    fitted module's forward pass in inference mode, with skorch's output nonlinearity."""
    import torch

    net = est.estimator
    module = net.module_
    nonlinearity = net._get_predict_nonlinearity()
    module.eval()

    def proba(X: Any) -> Array:
        with torch.inference_mode():
            out = nonlinearity(module(torch.as_tensor(np.asarray(X, dtype=np.float32))))
        p = np.asarray(out.numpy(), dtype=np.float64)
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)

    return proba


def _generic_proba(est: Any) -> Step:
    def proba(X: Any) -> Array:
        with _config():
            return np.asarray(est.predict_proba(X), dtype=np.float64)

    return proba


def _final(est: Any) -> tuple[Step, str]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    from models.registry import ShrinkageLDA, SigmoidCalibrated

    name = type(est).__name__
    try:
        if isinstance(est, SigmoidCalibrated):
            return _calibrated(est), f"{type(est.estimator).__name__} + sigmoids"
        if isinstance(est, ShrinkageLDA):
            return est.predict_proba, name  # already plain array operations
        if isinstance(est, LogisticRegression):
            return _logistic(est), name
        if isinstance(est, MLPClassifier):
            return _mlp(est), name
        if isinstance(est, KNeighborsClassifier):
            return _knn(est), name
        if isinstance(est, RandomForestClassifier):
            return _random_forest(est), name
        if isinstance(est, HistGradientBoostingClassifier):
            return _hist_boosting(est), name
        if type(est).__name__ == "IntegerLabels" and hasattr(est.estimator, "module_"):
            return _torch_module(est), f"{type(est.estimator).__name__} module"
    except (NotImplementedError, AttributeError, KeyError, ValueError, ImportError) as exc:
        log.info("no compiled form of %s (%s): its own predict_proba is used", name, exc)
    return _generic_proba(est), f"{name} (its own predict_proba)"


class CompiledPipeline:
    """A fitted pipeline's ``predict_proba``, precomputed (see the module docstring).

    Attributes
    ----------
    fast : bool
        False when the compiled form disagreed with the pipeline on the probe rows (or
        could not be built), and the pipeline's own ``predict_proba`` is used.
    description : str
        The steps as compiled, e.g. ``"StandardScaler -> SVC + sigmoids"``.
    max_error : float
        Largest probability difference to the pipeline on the probe rows.
    """

    def __init__(self, pipeline: Any, probe: Any) -> None:
        from sklearn.pipeline import Pipeline

        self.pipeline = pipeline
        steps = pipeline.steps if isinstance(pipeline, Pipeline) else [("clf", pipeline)]
        self._steps: list[Step] = []
        names: list[str] = []
        for _, step in steps[:-1]:
            if step is None or step == "passthrough":
                continue
            fn, name = _transform(step)
            self._steps.append(fn)
            names.append(name)
        self._final, final_name = _final(steps[-1][1])
        names.append(final_name)
        self.description = " -> ".join(names)
        self.fast = True
        self.max_error = 0.0
        try:
            with _config():
                reference = np.asarray(pipeline.predict_proba(probe), dtype=np.float64)
            self.max_error = float(np.max(np.abs(self._compiled(probe) - reference)))
            tolerance = TOLERANCE_FLOAT32 if np.asarray(probe).dtype == np.float32 else TOLERANCE
            ok = bool(np.isfinite(self.max_error)) and self.max_error <= tolerance
        except Exception as exc:  # a compiled form that fails on real rows is not used
            log.warning("compiled %s failed on the probe rows (%s)", self.description, exc)
            ok = False
        if not ok:
            log.warning("compiled %s differs from the pipeline by %.3g: its own predict_proba is used",
                        self.description, self.max_error)
            self.fast = False
            self.description = f"{type(pipeline).__name__} (its own predict_proba)"
            self._final, self._steps = _generic_proba(pipeline), []

    def _compiled(self, X: Any) -> Array:
        for step in self._steps:
            X = step(X)
        return np.asarray(self._final(X), dtype=np.float64)

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities of ``X`` (rows as the pipeline takes them), columns in
        ``classes_`` order."""
        return self._compiled(X)

    @property
    def classes_(self) -> NDArray[Any]:
        return np.asarray(self.pipeline.classes_)


def probe_rows(pipeline: Any, shape: tuple[int, ...], n: int = 16, seed: int = 0) -> NDArray[Any]:
    """Rows to check a compiled pipeline on: around the training rows' mean and spread
    when the first step is a ``StandardScaler`` (feature rows), else filtered-EEG-like
    windows of ``shape`` (µV, float32)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    first = pipeline.steps[0][1] if isinstance(pipeline, Pipeline) else None
    if isinstance(first, StandardScaler) and first.mean_ is not None and first.scale_ is not None:
        return np.asarray(first.mean_ + rng.standard_normal((n, len(first.mean_))) * first.scale_)
    return (10.0 * rng.standard_normal((n, *shape))).astype(np.float32)


def compile_pipeline(pipeline: Any, shape: tuple[int, ...]) -> CompiledPipeline:
    """The compiled form of a fitted pipeline whose rows have ``shape`` (one row's shape:
    ``(n_features,)`` or ``(n_channels, n_samples)``), checked on :func:`probe_rows`."""
    return CompiledPipeline(pipeline, probe_rows(pipeline, shape))
