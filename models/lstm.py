"""An LSTM classifier of feature sequences (PyTorch, CPU), with a safe file format.

PyTorch is the optional extra ``deep`` (see :mod:`models.deep`, which holds the training
loop and the file format this model shares with the CNN).

The network is one (or more) LSTM layers over standardised sequences of frame features,
mean-pooled over time, dropout and a linear layer to the classes. The file is one
``torch.save`` of plain data -- the ``state_dict`` tensors, the standardisation tensors
and a JSON text of metadata -- and is read back with ``torch.load(weights_only=True)``,
which refuses any pickled code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, ModelFormatError
from models import deep

FORMAT = "duygu-lstm"
FORMAT_VERSION = 1


def _build(n_features: int, n_classes: int, hidden_size: int, num_layers: int, dropout: float) -> Any:
    torch = deep.torch_module("the LSTM")
    nn = torch.nn

    class LstmNet(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                                dropout=dropout if num_layers > 1 else 0.0)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(hidden_size, n_classes)

        def forward(self, x: Any) -> Any:
            out, _ = self.lstm(x)
            return self.head(self.drop(out.mean(dim=1)))

    return LstmNet()


class LstmClassifier:
    """Sequence classifier with a scikit-learn-like interface.

    Parameters
    ----------
    hidden_size, num_layers, dropout : LSTM size and regularisation.
    epochs : int
        Passes over the training set (full-batch Adam when the set fits ``batch_size``).
    learning_rate, weight_decay, batch_size : optimiser settings.
    random_state : int
        Seed of the weight initialisation and of the batch order (the global torch
        generator is left as it was).
    n_threads : int
        torch threads while fitting and predicting (1 is fastest for a model this small).
    """

    def __init__(self, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.2, epochs: int = 80,
                 learning_rate: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 64,
                 random_state: int = 0, n_threads: int = 1) -> None:
        if hidden_size < 1 or num_layers < 1 or epochs < 1 or batch_size < 1:
            raise DataError("hidden_size, num_layers, epochs and batch_size must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise DataError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_size = hidden_size
        self.num_layers = num_layers
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
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers, "dropout": self.dropout,
                "epochs": self.epochs, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "batch_size": self.batch_size,
                "random_state": self.random_state}

    @staticmethod
    def _check_X(X: NDArray[Any], n_features: int | None = None) -> NDArray[np.float32]:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(f"sequences must have shape (n_sequences, n_steps, n_features), got {X.shape}")
        if n_features is not None and X.shape[2] != n_features:
            raise DataError(f"sequences must have {n_features} features per step, got {X.shape[2]}")
        if not np.all(np.isfinite(X)):
            raise DataError("sequences must be finite, got NaN or inf")
        return X

    def fit(self, X: NDArray[Any], y: Sequence[str] | NDArray[Any]) -> LstmClassifier:
        """Train on ``X`` (n, steps, features) and string labels ``y``."""
        X = self._check_X(X)
        y_arr = np.asarray(y).astype(str)
        if y_arr.shape != (X.shape[0],):
            raise DataError(f"labels must have one entry per sequence ({X.shape[0]}), got {y_arr.shape}")
        self.classes_ = sorted(np.unique(y_arr).tolist())
        if len(self.classes_) < 2:
            raise DataError(f"training needs >= 2 classes, got {self.classes_}")
        flat = X.reshape(-1, X.shape[2])
        self._mean = flat.mean(axis=0)
        self._std = np.where(flat.std(axis=0) > 1e-8, flat.std(axis=0), 1.0).astype(np.float32)
        self._net, self.loss_curve_ = deep.train_classifier_net(
            lambda: _build(X.shape[2], len(self.classes_), self.hidden_size, self.num_layers, self.dropout),
            (X - self._mean) / self._std, np.searchsorted(self.classes_, y_arr).astype(np.int64),
            epochs=self.epochs, learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            batch_size=self.batch_size, random_state=self.random_state, n_threads=self.n_threads)
        return self

    def predict_proba(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """Class probabilities (n, n_classes), columns in ``classes_`` order."""
        if self._net is None or self._mean is None or self._std is None:
            raise DataError("LstmClassifier is not fitted: call fit() or load a model first")
        X = self._check_X(X, len(self._mean))
        return deep.predict_proba_net(self._net, (X - self._mean) / self._std, self.n_threads)

    def predict(self, X: NDArray[Any]) -> NDArray[np.str_]:
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]

    # -- files ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        """Write weights, standardisation and JSON metadata (``meta`` is stored too)."""
        torch = deep.torch_module("the LSTM")
        if self._net is None or self._mean is None or self._std is None:
            raise DataError("LstmClassifier is not fitted: nothing to save")
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "classes": self.classes_,
            "n_features": len(self._mean), "params": self._params(), "torch": torch.__version__,
            "meta": meta or {},
        }
        deep.save_net_file(path, FORMAT, header, self._net, self._mean, self._std)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[LstmClassifier, dict[str, Any]]:
        """Read a file written by :meth:`save`; returns the classifier and its ``meta``.

        Raises
        ------
        ModelFormatError
            Not such a file, tampered with, or holding anything but plain tensors and text.
        """
        header, payload, name = deep.load_model_file_of(path, FORMAT, "LSTM")
        return cls.from_payload(header, payload, name)

    @classmethod
    def from_payload(cls, header: dict[str, Any], payload: dict[str, Any],
                     name: str) -> tuple[LstmClassifier, dict[str, Any]]:
        """The classifier of a file read by :func:`models.deep.load_model_file`."""
        with deep.reading_model(name, "LSTM"):
            if header.get("format_version") != FORMAT_VERSION:
                raise ModelFormatError(f"{name}: LSTM format_version must be {FORMAT_VERSION}, got {header.get('format_version')}")
            params = dict(header["params"])
            clf = cls(**params)
            clf.classes_ = [str(c) for c in header["classes"]]
            n_features = int(header["n_features"])
            net = _build(n_features, len(clf.classes_), clf.hidden_size, clf.num_layers, clf.dropout)
            clf._mean, clf._std = deep.restore_net(net, payload, n_features, name)
            clf._net = net
        return clf, dict(header.get("meta", {}))
