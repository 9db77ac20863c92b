"""A compact CNN on log-mel spectrogram patches (PyTorch, CPU), with a safe file format.

The audio paper trains a 20-layer CNN on spectrograms; this one is small enough to train
on a laptop CPU in seconds: four blocks of 3x3 convolution, batch norm, ReLU and 2x2 max
pooling (8, 16, 24, 32 channels), a global average, dropout and a linear layer, about
12 000 weights. Its input is a patch of :data:`PATCH_STEPS` steps (2.97 s) of the
:data:`N_BANDS`-band log-mel spectrum (:func:`log_mel`: the analysis's 128-band mel dB
averaged over pairs of bands and of frames, 46 ms a step), standardised per band on the
training set. A clip's (or segment's) probabilities are the mean of its patches'.

The file is one ``torch.save`` of plain data (:mod:`models.deep`): the ``state_dict``,
the standardisation and a JSON header, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, ModelFormatError
from models import deep
from processing.audio import ANALYSIS_SFREQ_HZ, HOP, N_MELS

FORMAT = "duygu-cnn"
FORMAT_VERSION = 1
#: mel bands of the CNN input (pairs of the analysis's 128)
N_BANDS = N_MELS // 2
#: analysis frames averaged into one CNN step
TIME_POOL = 2
STEP_RATE_HZ = ANALYSIS_SFREQ_HZ / HOP / TIME_POOL
#: steps of one patch (2.97 s) and between patch starts (1.49 s)
PATCH_STEPS = 64
PATCH_HOP_STEPS = 32
CHANNELS = (8, 16, 24, 32)


def log_mel(mel_db: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """The CNN's spectrogram of analysis frames: (n_frames, 128) mel dB -> (N_BANDS, n_steps).

    Adjacent frames and adjacent bands are averaged in pairs (a last odd frame is dropped).
    """
    mel = np.asarray(mel_db, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != N_MELS:
        raise DataError(f"mel_db must have shape (n_frames, {N_MELS}), got {mel.shape}")
    n = (mel.shape[0] // TIME_POOL) * TIME_POOL
    pooled = mel[:n].reshape(n // TIME_POOL, TIME_POOL, N_BANDS, N_MELS // N_BANDS).mean(axis=(1, 3))
    return np.ascontiguousarray(pooled.T)


def frame_to_step(frame: int) -> int:
    """The CNN step holding analysis frame ``frame``."""
    return frame // TIME_POOL


def patch_starts(start: int, stop: int, patch_steps: int = PATCH_STEPS, hop_steps: int = PATCH_HOP_STEPS) -> list[int]:
    """First steps of the whole patches within steps ``start:stop`` (none if it is shorter)."""
    return list(range(start, stop - patch_steps + 1, hop_steps))


def patches(spec: NDArray[np.float32], start: int = 0, stop: int | None = None,
            patch_steps: int = PATCH_STEPS, hop_steps: int = PATCH_HOP_STEPS) -> NDArray[np.float32]:
    """(n, N_BANDS, patch_steps) patches of ``spec`` (N_BANDS, n_steps) within ``start:stop``."""
    stop = spec.shape[1] if stop is None else min(stop, spec.shape[1])
    starts = patch_starts(start, stop, patch_steps, hop_steps)
    if not starts:
        return np.zeros((0, spec.shape[0], patch_steps), np.float32)
    return np.stack([spec[:, s:s + patch_steps] for s in starts])


def _build(n_bands: int, n_classes: int, channels: Sequence[int], dropout: float) -> Any:
    torch = deep.torch_module("the CNN")
    nn = torch.nn

    class MelCnn(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            c_in = 1
            for i, c_out in enumerate(channels):
                # the first block strides instead of pooling: a quarter of the work at full resolution
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                if i > 0:
                    layers.append(nn.MaxPool2d(2))
                c_in = c_out
            self.features = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(c_in * (n_bands >> len(channels)), n_classes)

        def forward(self, x: Any) -> Any:  # (n, bands, steps)
            z = self.features(x.unsqueeze(1)).mean(dim=3)  # average over time, keep the register
            return self.head(self.drop(z.flatten(1)))

    return MelCnn()


class CnnClassifier:
    """Patch classifier with a scikit-learn-like interface.

    Parameters
    ----------
    channels : sequence of int
        Output channels of the convolution blocks (each halves both axes).
    dropout : float
        Dropout before the linear layer.
    epochs, learning_rate, weight_decay, batch_size : training settings (Adam).
    random_state : int
        Seed of the initial weights and the batch order.
    n_threads : int
        torch threads while fitting and predicting (1 is fastest for a network this small).
    """

    def __init__(self, channels: Sequence[int] = CHANNELS, dropout: float = 0.3, epochs: int = 30,
                 learning_rate: float = 3e-3, weight_decay: float = 1e-4, batch_size: int = 32,
                 random_state: int = 0, n_threads: int = 1) -> None:
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise DataError(f"channels must be >= 1 each, got {channels}")
        if epochs < 1 or batch_size < 1:
            raise DataError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        if not 0.0 <= dropout < 1.0:
            raise DataError(f"dropout must be in [0, 1), got {dropout}")
        if not (learning_rate > 0 and weight_decay >= 0):
            raise DataError(f"learning_rate must be > 0 and weight_decay >= 0, got {learning_rate} and {weight_decay}")
        self.channels = channels
        self.dropout = dropout
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_threads = max(1, int(n_threads))
        self.classes_: list[str] = []
        self.loss_curve_: list[float] = []
        self._net: Any = None
        self._mean: NDArray[np.float32] | None = None
        self._std: NDArray[np.float32] | None = None

    def _params(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "dropout": self.dropout, "epochs": self.epochs,
                "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "random_state": self.random_state}

    @staticmethod
    def _check_X(X: NDArray[Any], n_bands: int | None = None) -> NDArray[np.float32]:
        X = np.asarray(X, dtype=np.float32)
        min_steps = 2 ** len(CHANNELS)
        if X.ndim != 3 or X.shape[0] == 0 or X.shape[2] < min_steps:
            raise DataError(f"patches must have shape (n_patches, n_bands, n_steps >= {min_steps}), got {X.shape}")
        if n_bands is not None and X.shape[1] != n_bands:
            raise DataError(f"patches must have {n_bands} bands, got {X.shape[1]}")
        if not np.all(np.isfinite(X)):
            raise DataError("patches must be finite, got NaN or inf")
        return X

    def _standardise(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        assert self._mean is not None and self._std is not None
        return (X - self._mean[None, :, None]) / self._std[None, :, None]

    def fit(self, X: NDArray[Any], y: Sequence[str] | NDArray[Any]) -> CnnClassifier:
        """Train on patches ``X`` (n, bands, steps) and string labels ``y``."""
        X = self._check_X(X)
        y_arr = np.asarray(y).astype(str)
        if y_arr.shape != (X.shape[0],):
            raise DataError(f"labels must have one entry per patch ({X.shape[0]}), got {y_arr.shape}")
        self.classes_ = sorted(np.unique(y_arr).tolist())
        if len(self.classes_) < 2:
            raise DataError(f"training needs >= 2 classes, got {self.classes_}")
        self._mean = X.mean(axis=(0, 2)).astype(np.float32)
        std = X.std(axis=(0, 2))
        self._std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        self._net, self.loss_curve_ = deep.train_classifier_net(
            lambda: _build(X.shape[1], len(self.classes_), self.channels, self.dropout),
            self._standardise(X), np.searchsorted(self.classes_, y_arr).astype(np.int64),
            epochs=self.epochs, learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            batch_size=self.batch_size, random_state=self.random_state, n_threads=self.n_threads)
        return self

    def predict_proba(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """Class probabilities of each patch (n, n_classes), columns in ``classes_`` order."""
        if self._net is None or self._mean is None:
            raise DataError("CnnClassifier is not fitted: call fit() or load a model first")
        X = self._check_X(X, len(self._mean))
        return deep.predict_proba_net(self._net, self._standardise(X), self.n_threads)

    def predict_clip(self, spec: NDArray[np.float32], start: int = 0, stop: int | None = None,
                     hop_steps: int = PATCH_HOP_STEPS) -> NDArray[np.float64]:
        """Mean patch probabilities of steps ``start:stop`` of ``spec`` (N_BANDS, n_steps).

        Raises
        ------
        DataError
            If the span is shorter than one patch.
        """
        x = patches(spec, start, stop, PATCH_STEPS, hop_steps)
        if x.shape[0] == 0:
            span = (spec.shape[1] if stop is None else min(stop, spec.shape[1])) - start
            raise DataError(f"too short for the CNN ({span / STEP_RATE_HZ:.2f} s < one patch of "
                            f"{PATCH_STEPS / STEP_RATE_HZ:.2f} s)")
        return self.predict_proba(x).mean(axis=0)

    # -- files ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        """Write weights, standardisation and JSON metadata (``meta`` is stored too)."""
        torch = deep.torch_module("the CNN")
        if self._net is None or self._mean is None or self._std is None:
            raise DataError("CnnClassifier is not fitted: nothing to save")
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "classes": self.classes_,
            "n_bands": len(self._mean), "patch_steps": PATCH_STEPS, "params": self._params(),
            "torch": torch.__version__, "meta": meta or {},
        }
        deep.save_net_file(path, FORMAT, header, self._net, self._mean, self._std)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[CnnClassifier, dict[str, Any]]:
        """Read a file written by :meth:`save`; returns the classifier and its ``meta``.

        Raises
        ------
        ModelFormatError
            Not such a file, tampered with, or holding anything but plain tensors and text.
        """
        header, payload, name = deep.load_model_file_of(path, FORMAT, "CNN")
        return cls.from_payload(header, payload, name)

    @classmethod
    def from_payload(cls, header: dict[str, Any], payload: dict[str, Any],
                     name: str) -> tuple[CnnClassifier, dict[str, Any]]:
        """The classifier of a file read by :func:`models.deep.load_model_file`."""
        with deep.reading_model(name, "CNN"):
            if header.get("format_version") != FORMAT_VERSION:
                raise ModelFormatError(f"{name}: CNN format_version must be {FORMAT_VERSION}, got {header.get('format_version')}")
            if int(header["n_bands"]) != N_BANDS or int(header["patch_steps"]) != PATCH_STEPS:
                raise ModelFormatError(f"{name}: CNN input must be {N_BANDS} bands x {PATCH_STEPS} steps, got "
                                       f"{header['n_bands']} x {header['patch_steps']}")
            clf = cls(**dict(header["params"]))
            clf.classes_ = [str(c) for c in header["classes"]]
            net = _build(N_BANDS, len(clf.classes_), clf.channels, clf.dropout)
            clf._mean, clf._std = deep.restore_net(net, payload, N_BANDS, name)
            clf._net = net
        return clf, dict(header.get("meta", {}))
