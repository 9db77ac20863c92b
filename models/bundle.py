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
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
)


@dataclass
class Bundle:
    """A fitted pipeline and what it was trained on.

    Attributes
    ----------
    estimator : sklearn Pipeline
        ``StandardScaler -> classifier``, fitted; has ``predict_proba``.
    meta : dict
        ``classifier``, ``classes``, ``channels``, ``sfreq_hz``, ``preset``,
        ``preset_params``, ``feature_names``, ``protocol``, ``metrics``,
        ``best_params``, ``training_data`` (hash, rows, source), ``versions``,
        ``created``.
    """

    estimator: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_]

    def predict_proba(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Class probabilities, columns in :attr:`classes` order."""
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def train_bundle(dataset: Dataset, classifier: str, protocol_result: Any = None,
                 random_state: int = 0) -> Bundle:
    """Fit registry entry ``classifier`` on all of ``dataset`` and wrap it as a :class:`Bundle`.

    The inner hyper-parameter search is grouped by trial when the dataset has groups.

    Parameters
    ----------
    dataset : Dataset
    classifier : str
        Registry name.
    protocol_result : dict or EvaluationReport, optional
        An evaluation of this classifier to keep in ``meta["metrics"]``.
    random_state : int

    Raises
    ------
    DataError
        Bad dataset (NaN/inf, one class) or unknown classifier.
    """
    from models.evaluation import EvaluationReport
    from models.registry import (
        best_params,
        final_pipeline,
        fit_classifier,
        get_spec,
        make_classifier,
    )

    spec = get_spec(classifier)
    dataset.validate()
    _, counts = np.unique(dataset.y, return_counts=True)
    if counts.min() < 2:
        raise DataError(f"every class needs >= 2 samples to train, one has {int(counts.min())}")
    fitted = fit_classifier(make_classifier(spec.name, random_state), dataset.X, dataset.y,
                            dataset.groups if dataset.has_groups() else None)
    pipeline = final_pipeline(fitted)
    metrics: dict[str, Any] | None = None
    protocol = None
    if isinstance(protocol_result, EvaluationReport):
        metrics = protocol_result.as_json()
        metrics["p_value"] = protocol_result.p_value
        protocol = protocol_result.protocol
    elif isinstance(protocol_result, dict):
        metrics = dict(protocol_result)
        protocol = protocol_result.get("protocol")
    meta = {
        "classifier": spec.name,
        "classes": [str(c) for c in pipeline.classes_],
        "channels": dataset.meta.get("channels"),
        "sfreq_hz": dataset.meta.get("sfreq_hz"),
        "preset": dataset.meta.get("preset"),
        "preset_params": dataset.meta.get("preset_params"),
        "feature_names": list(dataset.feature_names),
        "n_features": int(dataset.X.shape[1]),
        "protocol": protocol,
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
