"""Model bundles: a fitted pipeline plus metadata in one skops file (never plain pickle).

Layout of a ``.skops`` bundle: a skops file holding a dict with ``format``
(``"duygu-model-bundle"``), ``format_version``, ``meta`` (JSON text), ``payload`` (the
skops bytes of the fitted :class:`~sklearn.pipeline.Pipeline`) and ``payload_sha256``.
Loading checks, in order: the file is a skops zip holding only plain data at the top,
it is a Duygu bundle of a known version, the payload checksum matches (a tampered
payload is refused), the payload holds only types in :data:`TRUSTED_TYPES` (beside
skops' own trusted scikit-learn/numpy types), and the bundle's channels and rate match
what the caller expects. Every refusal is a one-line :class:`ModelFormatError`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, ModelFormatError
from acquisition.settings import atomic_output
from models.datasets import Dataset

FORMAT = "duygu-model-bundle"
FORMAT_VERSION = 1

#: Types beyond skops' defaults that Duygu's registry pipelines contain. A bundle with
#: any other type is refused; a new registry entry that needs more types adds them here
#: (tests/test_models_bundle.py checks every entry round-trips).
TRUSTED_TYPES: tuple[str, ...] = (
    "models.registry.ShrinkageLDA",
    "models.registry.SigmoidCalibrated",
    "pyriemann.estimation.Covariances",
    "pyriemann.tangentspace.TangentSpace",
    # the two calibration types: bundles written before the calibration moved into the
    # registry (SigmoidCalibrated) still load
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)

#: Entries whose fitted model is not a skops-safe pipeline (a torch module).
NOT_BUNDLED: tuple[str, ...] = ("eegnet",)


@dataclass
class Bundle:
    """A fitted pipeline and what it was trained on.

    Attributes
    ----------
    estimator : sklearn Pipeline
        ``StandardScaler -> classifier``, fitted; has ``predict_proba``.
    meta : dict
        ``classifier`` (``chosen_classifier`` for ``auto``), ``classes``, ``channels``,
        ``sfreq_hz``, ``preset``, ``preset_params``, ``feature_names``, ``input``
        (features or windows), ``protocol``, ``inner_cv``, ``domain`` (``epoc-raw``,
        ``deap-preprocessed``, ``feature-table``), ``metrics``, ``best_params``,
        ``training_data`` (hash, rows, source), ``versions``, ``created``.
    """

    estimator: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_]

    @property
    def reads_windows(self) -> bool:
        """True when the model reads raw filtered windows, not feature vectors."""
        return self.meta.get("input") == "windows"

    def predict_proba(self, X: NDArray[np.float64] | NDArray[np.float32]) -> NDArray[np.float64]:
        """Class probabilities of feature rows (or raw windows, :attr:`reads_windows`), columns
        in :attr:`classes` order."""
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a bundle depends on."""
    import scipy
    import sklearn
    import skops

    from acquisition import __version__

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "skops": skops.__version__, "duygu": __version__}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def save_bundle(path: str | Path, estimator: Any, meta: dict[str, Any]) -> Path:
    """Write ``estimator`` (a fitted Pipeline) and ``meta`` to ``path`` as a skops bundle.

    Raises
    ------
    ModelFormatError
        If the estimator holds a type Duygu would refuse to load back.
    """
    import skops.io as sio

    path = Path(path)
    payload = sio.dumps(estimator)
    untrusted = [t for t in sio.get_untrusted_types(data=payload) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelFormatError(f"estimator holds types a bundle may not hold: {', '.join(untrusted)}")
    full_meta = dict(meta)
    full_meta.setdefault("classes", [str(c) for c in getattr(estimator, "classes_", [])])
    full_meta.setdefault("versions", library_versions())
    full_meta.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    outer = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(_jsonable(full_meta), sort_keys=True),
        "payload": payload,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    with atomic_output(path) as tmp:
        sio.dump(outer, tmp)
    return path


def load_bundle(path: str | Path, expect_channels: tuple[str, ...] | list[str] | None = None,
                expect_sfreq_hz: float | None = None) -> Bundle:
    """Load a bundle written by :func:`save_bundle`, refusing anything else.

    Parameters
    ----------
    path : path
    expect_channels : sequence of str, optional
        The source's channels: the bundle must have been trained on exactly these.
    expect_sfreq_hz : float, optional
        The source's rate: the bundle must have been trained at this rate.

    Raises
    ------
    ModelFormatError
        Missing, foreign, tampered, untrusted, or for other channels or rate.
    """
    import skops.io as sio

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ModelFormatError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelFormatError(f"model file {name} is not a skops bundle (not a zip archive)")
    try:
        outer_untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many kinds on a broken archive
        raise ModelFormatError(f"model file {name} is not a readable skops file: {_one_line(exc)}") from exc
    if outer_untrusted:
        raise ModelFormatError(f"model file {name} is not a Duygu bundle (holds {', '.join(outer_untrusted)})")
    try:
        outer = sio.load(path, trusted=[])
    except Exception as exc:  # corrupted entries (bad CRC, bad JSON schema ...)
        raise ModelFormatError(f"model file {name} is damaged: {_one_line(exc)}") from exc
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise ModelFormatError(f"model file {name} is a skops file but not a Duygu model bundle")
    if outer.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"model file {name} has bundle format version {outer.get('format_version')!r}, this Duygu reads {FORMAT_VERSION}"
        )
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("payload_sha256"):
        raise ModelFormatError(f"model file {name} was tampered with: the model checksum does not match")
    try:
        untrusted = sio.get_untrusted_types(data=payload)
    except Exception as exc:
        raise ModelFormatError(f"model file {name} holds an unreadable model: {_one_line(exc)}") from exc
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise ModelFormatError(f"model file {name} holds types Duygu does not trust: {', '.join(refused)}")
    try:
        meta = json.loads(outer["meta"])
        estimator = sio.loads(payload, trusted=untrusted)
    except Exception as exc:
        raise ModelFormatError(f"model file {name} is damaged: {_one_line(exc)}") from exc
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise ModelFormatError(f"model file {name} holds a {type(estimator).__name__}, not a fitted classifier")
    bundle = Bundle(estimator, meta)
    check_compatible(bundle, expect_channels, expect_sfreq_hz, name)
    return bundle


def check_compatible(bundle: Bundle, channels: tuple[str, ...] | list[str] | None,
                     sfreq_hz: float | None, name: str = "the model") -> None:
    """Raise :class:`ModelFormatError` unless ``bundle`` fits a source with ``channels``/``sfreq_hz``."""
    meta = bundle.meta
    if channels is not None:
        have = meta.get("channels")
        if have is None:
            raise ModelFormatError(f"{name} was trained on a feature table, not on EEG channels; it cannot read a source")
        if list(have) != list(channels):
            raise ModelFormatError(
                f"{name} was trained on channels {','.join(have)}, the source has {','.join(channels)}"
            )
    if sfreq_hz is not None:
        have_hz = meta.get("sfreq_hz")
        if have_hz is None or abs(float(have_hz) - float(sfreq_hz)) > 1e-6:
            raise ModelFormatError(f"{name} was trained at {have_hz} Hz, the source runs at {sfreq_hz:g} Hz")


def domain_warning(bundle: Bundle) -> str | None:
    """A one-line warning when ``bundle`` was trained on another kind of EEG than a live
    EPOC+ source delivers (raw µV), else ``None``.

    DEAP's preprocessed files are down-sampled, 4-45 Hz band-passed, average-referenced
    and EOG-cleaned; a model trained on them sees different band powers and spatial
    structure than a raw EPOC+ stream, so its live accuracy is unknown.
    """
    from models.datasets import DOMAIN_DEAP

    if bundle.meta.get("domain") == DOMAIN_DEAP:
        return ("this model was trained on DEAP's preprocessed EEG (4-45 Hz band-pass, average reference, "
                "EOG removed); the live EPOC+ source is raw: the domains differ and its accuracy will not transfer")
    return None


def inner_cv_warning(bundle: Bundle) -> str | None:
    """A one-line warning when the final fit's inner CV (hyper-parameter search,
    calibration) could not be grouped and fell back (``meta["inner_cv"]`` not grouped),
    else ``None`` (also when the classifier searched nothing)."""
    inner = bundle.meta.get("inner_cv")
    if not inner or inner.get("grouped", True):
        return None
    by = inner.get("by", "rows")
    noun = "row" if by == "rows" else str(by)
    reason = inner.get("reason")
    return (f"the final fit's inner CV (hyper-parameter search, calibration) falls back to {noun} folds"
            + (f": {reason}" if reason else ""))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def train_bundle(dataset: Dataset, classifier: str, protocol_result: Any = None,
                 random_state: int = 0, protocol: str | None = None) -> Bundle:
    """Fit registry entry ``classifier`` (or ``auto``) on all of ``dataset`` and wrap it as a :class:`Bundle`.

    The inner hyper-parameter search (and the calibration of the SVMs) is grouped by the
    protocol's unit: the subject for ``loso``, the trial (stimulus for fused data)
    otherwise, the subject for a table with subjects but no groups.

    Parameters
    ----------
    dataset : Dataset
    classifier : str
        Registry name or ``auto``.
    protocol_result : dict or EvaluationReport, optional
        An evaluation of this classifier to keep in ``meta["metrics"]``.
    random_state : int
    protocol : str, optional
        The protocol whose unit groups the inner CV (default: that of ``protocol_result``,
        else ``grouped`` when the rows have groups).

    Raises
    ------
    DataError
        Bad dataset (NaN/inf, one class), unknown classifier, or one that a bundle cannot
        hold.
    """
    from models.evaluation import EvaluationReport, get_protocol, inner_groups
    from models.registry import (
        AUTO,
        best_params,
        final_pipeline,
        fit_classifier,
        input_of,
        make_classifier,
        parse_classifiers,
    )

    name = parse_classifiers([classifier])[0]
    if name in NOT_BUNDLED:
        raise DataError(f"classifier {name!r} cannot be saved in a model bundle (a torch module is not a "
                        f"skops-safe pipeline); evaluate it with 'duygu evaluate'")
    dataset.validate()
    _, counts = np.unique(dataset.y, return_counts=True)
    if counts.min() < 2:
        raise DataError(f"every class needs >= 2 samples to train, one has {int(counts.min())}")
    metrics: dict[str, Any] | None = None
    if isinstance(protocol_result, EvaluationReport):
        metrics = protocol_result.as_full_json()
        metrics["p_value"] = protocol_result.p_value
        protocol = protocol or protocol_result.protocol
    elif isinstance(protocol_result, dict):
        metrics = dict(protocol_result)
        protocol = protocol or protocol_result.get("protocol")
    groups, by = inner_groups(dataset, get_protocol(protocol or "grouped"))
    rows = dataset.windows if input_of(name) == "windows" else dataset.X
    if rows is None:
        raise DataError(f"classifier {name!r} reads raw EEG windows: train on labelled trials (--store or --deap)")
    fitted = fit_classifier(make_classifier(name, random_state), rows, dataset.y, groups, by)
    pipeline = final_pipeline(fitted)
    inner = getattr(fitted, "inner_cv_", None)
    meta = {
        "classifier": name,
        "chosen_classifier": getattr(fitted, "chosen_", name) if name == AUTO else name,
        "classes": [str(c) for c in pipeline.classes_],
        "channels": dataset.meta.get("channels"),
        "sfreq_hz": dataset.meta.get("sfreq_hz"),
        "preset": dataset.meta.get("preset"),
        "preset_params": dataset.meta.get("preset_params"),
        "feature_names": list(dataset.feature_names),
        "n_features": int(dataset.X.shape[1]),
        "input": input_of(name),
        "protocol": protocol,
        "inner_cv": None if inner is None else inner.as_dict(),
        "inner_scores": dict(getattr(fitted, "scores_", {})),
        "domain": dataset.meta.get("domain"),
        "metrics": metrics,
        "best_params": best_params(fitted),
        "random_state": random_state,
        "training_data": {
            "hash": dataset.data_hash(),
            "rows": dataset.n_rows,
            "source": dataset.meta.get("source"),
            "groups": None if dataset.groups is None else len(np.unique(dataset.groups)),
            "subjects": None if dataset.subjects is None else sorted(np.unique(dataset.subjects).tolist()),
        },
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return Bundle(pipeline, _jsonable(meta))
