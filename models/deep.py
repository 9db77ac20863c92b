"""What the PyTorch models share: the import, thread control, the seeded training loop and
the safe model file.

PyTorch is the optional extra ``deep``: it is imported inside the functions, so the rest
of Duygu works without it and a missing install is a one-line :class:`DuyguError`.

A model file is one ``torch.save`` of plain data -- a format marker, a JSON text of
metadata and a dict of tensors (the ``state_dict`` and any standardisation) -- read back
with ``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, DuyguError, ModelFormatError


def torch_module(what: str = "this model") -> Any:
    """``import torch``, or a one-line :class:`DuyguError` naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise DuyguError(f"{what} needs PyTorch: pip install 'duygu[deep]' ({exc})") from None
    return torch


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads (None: leave it), then restore the setting.

    A small network gains nothing from more threads, and on a busy machine idle-spinning
    OpenMP workers make it many times slower.
    """
    torch = torch_module()
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_classifier_net(build: Callable[[], Any], X: NDArray[np.floating[Any]], y_index: NDArray[np.int64], *,
                         epochs: int, learning_rate: float, weight_decay: float, batch_size: int,
                         random_state: int, n_threads: int = 1) -> tuple[Any, list[float]]:
    """Build a network and fit it with Adam and cross-entropy; returns it (in eval mode)
    and the mean loss of every epoch.

    ``build()`` runs with the torch generator seeded by ``random_state``, so the same seed
    gives the same initial weights and batch order; the global generator is left as it was.
    """
    torch = torch_module()
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y_index, dtype=np.int64))
    curve: list[float] = []
    with threads(n_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        net = build()
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(random_state)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(Xt.shape[0], generator=gen)
            total = 0.0
            for start in range(0, Xt.shape[0], batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad()
                loss = loss_fn(net(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            curve.append(total / Xt.shape[0])
    net.eval()
    return net, curve


def predict_proba_net(net: Any, X: NDArray[np.floating[Any]], n_threads: int = 1,
                      batch_size: int = 256) -> NDArray[np.float64]:
    """Softmax outputs of ``net`` on ``X`` (in batches), float64."""
    torch = torch_module()
    out = []
    with threads(n_threads), torch.no_grad():
        for start in range(0, X.shape[0], batch_size):
            logits = net(torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size], dtype=np.float32)))
            out.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(out, axis=0)


def save_model_file(path: str | os.PathLike[str], fmt: str, header: Mapping[str, Any],
                    tensors: Mapping[str, Any]) -> None:
    """Write ``{"format", "meta_json", **tensors}`` with ``torch.save`` (plain data only),
    atomically: a failed write leaves any earlier file as it was."""
    from acquisition.settings import atomic_output

    torch = torch_module()
    payload: dict[str, Any] = {"format": fmt, "meta_json": json.dumps(dict(header), allow_nan=False)}
    payload.update(tensors)
    with atomic_output(path) as tmp:
        torch.save(payload, os.fspath(tmp))


def load_model_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Read a file of :func:`save_model_file`: its format, its header and the payload.

    Raises
    ------
    ModelFormatError
        Missing, not a torch file, holding anything but plain tensors and text (refused by
        ``torch.load(weights_only=True)``), or without a format marker and header.
    """
    torch = torch_module("reading this model")
    name = os.path.basename(os.fspath(path))
    try:
        payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFormatError(f"model file {os.fspath(path)!r} does not exist") from None
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError, EOFError, KeyError, AttributeError,
            TypeError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelFormatError(f"{name}: not a Duygu model file (refused by torch.load(weights_only=True): {text})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str):
        raise ModelFormatError(f"{name}: not a Duygu model file (format marker missing)")
    try:
        header = json.loads(payload["meta_json"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{name}: damaged model file (no readable header: {type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{name}: damaged model file (header is not an object)")
    return str(payload["format"]), header, payload


def save_net_file(path: str | os.PathLike[str], fmt: str, header: Mapping[str, Any], net: Any,
                  mean: NDArray[np.floating[Any]], std: NDArray[np.floating[Any]]) -> None:
    """:func:`save_model_file` of a network's ``state_dict`` and its input standardisation."""
    torch = torch_module()
    save_model_file(path, fmt, header, {
        "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "mean": torch.from_numpy(mean.copy()),
        "std": torch.from_numpy(std.copy()),
    })


def load_model_file_of(path: str | os.PathLike[str], fmt: str,
                       what: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """:func:`load_model_file` of a file that must hold format ``fmt`` (a ``what`` model):
    its header, its payload and the file's name (for messages)."""
    found, header, payload = load_model_file(path)
    name = os.path.basename(os.fspath(path))
    if found != fmt:
        raise ModelFormatError(f"{name}: not a Duygu {what} model (format {found!r})")
    return header, payload, name


def restore_net(net: Any, payload: Mapping[str, Any], n_inputs: int,
                name: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Load a payload's ``state_dict`` into ``net`` (strict, then eval mode) and return its
    input ``mean`` and ``std`` (``n_inputs`` each)."""
    net.load_state_dict(payload["state_dict"], strict=True)
    net.eval()
    return (tensor_to_numpy(payload["mean"], (n_inputs,), "mean", name),
            tensor_to_numpy(payload["std"], (n_inputs,), "std", name))


@contextlib.contextmanager
def reading_model(name: str, what: str) -> Iterator[None]:
    """Turn what a damaged file's contents raise while a ``what`` model is rebuilt from it
    into one :class:`ModelFormatError` line naming the file."""
    try:
        yield
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, DataError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelFormatError(f"{name}: damaged {what} model ({type(exc).__name__}: {text})") from None


def tensor_to_numpy(value: Any, shape: tuple[int, ...], what: str, name: str) -> NDArray[np.float32]:
    """A stored tensor as float32 numpy of ``shape``, or :class:`ModelFormatError`."""
    torch = torch_module()
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ModelFormatError(f"{name}: damaged model file ({what} must have shape {shape}, got {got})")
    return value.numpy().astype(np.float32)
