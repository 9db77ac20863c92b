"""Clip features from a pretrained audio transformer on disk (HuBERT, wav2vec 2.0 and kin).

A lab that has, say, ``hubert-large-ls960-ft`` in a local folder (``config.json``,
``preprocessor_config.json`` and the weights, as ``save_pretrained`` writes them) points
Duygu at that folder. :class:`AudioEmbedder` loads it with ``transformers`` strictly
offline (``local_files_only``; nothing is ever downloaded) and turns a piece of audio into
one vector: the hidden states of one transformer layer, mean-pooled over time. The music
models use these vectors as clip features for the registry classifiers (``emb:NAME``).

A model trained on embeddings records the folder and a fingerprint of its files
(:meth:`AudioEmbedder.describe`); loading it again checks that the folder still holds the
same model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, DuyguError, ModelFormatError

#: ``model_type`` values of the speech/audio encoders whose hidden states Duygu pools
AUDIO_MODEL_TYPES = ("hubert", "wav2vec2", "wav2vec2-conformer", "wavlm", "data2vec-audio",
                     "unispeech", "unispeech-sat", "sew", "sew-d")
#: files whose bytes make the fingerprint of a model folder (plus the weight files)
_FINGERPRINT_FILES = ("config.json", "preprocessor_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError as exc:
        raise DuyguError(f"--embedding needs transformers: pip install 'duygu[deep]' ({exc})") from None
    transformers.logging.set_verbosity_error()  # e.g. "weights of the CTC head not used": expected
    transformers.logging.disable_progress_bar()
    return transformers


def fingerprint(folder: Path) -> str:
    """sha256 over the names and bytes of a model folder's config, feature-extractor
    settings and weight files (sorted)."""
    digest = hashlib.sha256()
    names = [n for n in _FINGERPRINT_FILES if (folder / n).is_file()]
    names += sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    for name in names:
        digest.update(name.encode() + b"\0")
        with open(folder / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class AudioEmbedder:
    """A loaded audio transformer and the layer whose mean hidden state is the embedding.

    Use :meth:`load`; then :meth:`embed` (a mono signal at :attr:`sampling_rate_hz`) or
    :meth:`embed_file`.
    """

    path: Path
    layer: int
    model: Any
    feature_extractor: Any
    model_type: str
    hidden_size: int
    n_layers: int
    sampling_rate_hz: int
    fingerprint: str
    n_threads: int | None = None

    @property
    def dim(self) -> int:
        return self.hidden_size

    @classmethod
    def load(cls, path: str | os.PathLike[str], layer: int = -1, n_threads: int | None = None) -> AudioEmbedder:
        """Load the model in folder ``path`` (offline).

        Parameters
        ----------
        layer : int
            Index into the hidden states: 0 is the input of the first transformer layer,
            ``n_layers`` (or -1) the output of the last.
        n_threads : int, optional
            torch threads while embedding (default: torch's setting).

        Raises
        ------
        ModelFormatError
            Not a folder, no ``config.json``, not an audio encoder, or weights that do not
            load.
        DataError
            ``layer`` outside the model's layers.
        """
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelFormatError(f"embedding model {str(folder)!r} must be a folder (config.json and weights), "
                                   "not found or not a folder")
        if not (folder / "config.json").is_file():
            raise ModelFormatError(f"embedding model {str(folder)!r} has no config.json: not a saved transformers model")
        tf = _transformers()
        try:
            config = tf.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFormatError(f"embedding model {folder.name}: unreadable config.json ({_one_line(exc)})") from None
        model_type = str(getattr(config, "model_type", ""))
        if model_type not in AUDIO_MODEL_TYPES:
            raise ModelFormatError(f"embedding model {folder.name}: model_type must be one of "
                                   f"{', '.join(AUDIO_MODEL_TYPES)}, got {model_type!r}")
        n_layers = int(config.num_hidden_layers)
        if not -(n_layers + 1) <= layer <= n_layers:
            raise DataError(f"embedding layer must be in {-(n_layers + 1)}..{n_layers} for {folder.name} "
                            f"({n_layers} layers), got {layer}")
        try:
            model = tf.AutoModel.from_pretrained(str(folder), local_files_only=True)
        except _load_errors() as exc:
            raise ModelFormatError(f"embedding model {folder.name}: weights do not load ({_one_line(exc)})") from None
        model.eval()
        if (folder / "preprocessor_config.json").is_file():
            try:
                extractor = tf.AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise ModelFormatError(f"embedding model {folder.name}: unreadable preprocessor_config.json "
                                       f"({_one_line(exc)})") from None
        else:  # transformers' convention: layer-norm feature encoders expect normalised input
            extractor = tf.Wav2Vec2FeatureExtractor(
                sampling_rate=16000, do_normalize=getattr(config, "feat_extract_norm", "") == "layer")
        rate = int(getattr(extractor, "sampling_rate", 16000))
        return cls(folder.resolve(), layer, model, extractor, model_type, int(config.hidden_size), n_layers,
                   rate, fingerprint(folder), n_threads)

    def describe(self) -> dict[str, Any]:
        """Plain-data description for a model's metadata (checked by :func:`load_for`)."""
        return {"path": str(self.path), "model_type": self.model_type, "hidden_size": self.hidden_size,
                "n_layers": self.n_layers, "layer": self.layer, "sampling_rate_hz": self.sampling_rate_hz,
                "pooling": "mean over time", "fingerprint_sha256": self.fingerprint}

    def embed(self, y: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Mean hidden state of :attr:`layer` for mono ``y`` at :attr:`sampling_rate_hz`, (dim,)."""
        from models import deep

        torch = deep.torch_module("--embedding")
        y = np.asarray(y, dtype=np.float32).ravel()
        if y.size < self.sampling_rate_hz // 10 or not np.all(np.isfinite(y)):
            raise DataError(f"embedding input must be >= 0.1 s of finite samples, got {y.size} samples")
        values = self.feature_extractor(y, sampling_rate=self.sampling_rate_hz, return_tensors="np")["input_values"]
        with deep.threads(self.n_threads), torch.no_grad():
            out = self.model(input_values=torch.from_numpy(np.asarray(values, dtype=np.float32)),
                             output_hidden_states=True)
            hidden = out.hidden_states[self.layer][0]
            return hidden.mean(dim=0).double().numpy()

    def embed_file(self, path: str | os.PathLike[str], spans_s: list[tuple[float, float]]) -> NDArray[np.float64]:
        """Embeddings of spans ``(start_s, stop_s)`` of one file, (n_spans, dim); the file is
        decoded once at :attr:`sampling_rate_hz`."""
        from processing.audio import load_mono

        if not spans_s:
            return np.zeros((0, self.dim))
        rate = self.sampling_rate_hz
        bounds = [(round(a * rate), round(b * rate)) for a, b in spans_s]  # whole samples of the file
        first = min(a for a, _ in bounds)
        y = load_mono(path, offset_s=first / rate, duration_s=(max(b for _, b in bounds) - first) / rate,
                      sfreq_hz=rate)
        return np.stack([self.embed(y[a - first:b - first]) for a, b in bounds])


def load_for(meta: dict[str, Any], name: str) -> AudioEmbedder:
    """The embedder a trained model's ``meta["embedding"]`` names, checked.

    Raises
    ------
    ModelFormatError
        The folder is gone, or holds another model than the one trained on.
    """
    info = meta.get("embedding")
    if not isinstance(info, dict) or "path" not in info:
        raise ModelFormatError(f"{name}: an embedding model without its embedding settings")
    try:
        embedder = AudioEmbedder.load(info["path"], int(info.get("layer", -1)))
    except (ModelFormatError, DataError) as exc:
        raise ModelFormatError(f"{name}: its embedding model cannot be used: {exc}") from None
    if embedder.fingerprint != info.get("fingerprint_sha256"):
        raise ModelFormatError(f"{name}: embedding model folder {info['path']!r} holds other files than the model "
                               f"was trained with (fingerprint {embedder.fingerprint[:12]} != "
                               f"{str(info.get('fingerprint_sha256'))[:12]})")
    return embedder


def _load_errors() -> tuple[type[BaseException], ...]:
    """What a damaged weights file raises: safetensors' own error, or torch.load's."""
    import pickle

    from safetensors import SafetensorError

    return OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError, SafetensorError


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
