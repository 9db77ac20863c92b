"""Music emotion classifiers: a labelled library, evaluation, training, prediction.

A library is a folder with one sub-folder per emotion (as in the audio paper)::

    library/happy/*.ogg   library/sad/*.wav   ...

Every file is cut into segments (default 10 s every 5 s); a segment is one row of the
evaluation. What a model learns from a row depends on the model:

* the shared registry's classifiers: the clip summary
  (:func:`processing.audio.summary_feature_names`, 64 values);
* ``lstm``: the sequence of frame features (averaged over ``pool_frames`` frames, 23 ms
  each, plus the onset strength: 32 values per step);
* ``cnn``: the row's log-mel patches (:mod:`models.cnn`), its probabilities the mean of
  its patches';
* ``emb:NAME``: registry classifier NAME on the pooled hidden states of a pretrained
  audio transformer on disk (:mod:`models.embedding`, ``--embedding PATH``).

The group of every row is its file, so grouped protocols never put segments of one file
on both sides; for music ``loso`` leaves one *file* out (there are no subjects).

Evaluation is :func:`models.evaluation.run_evaluation` with :class:`MusicLearner` (one
engine: the same protocols, folds, permutations, metrics and leakage gap as for EEG), and
writes its JSON shape, with ``roc_auc`` (one-vs-rest, macro) added to every result row.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError, ModelFormatError
from models.datasets import Dataset
from models.evaluation import Learner, align_proba, run_evaluation
from processing import audio

log = logging.getLogger(__name__)

SEGMENT_S = 10.0
SEGMENT_HOP_S = 5.0
POOL_FRAMES = 8
LSTM = "lstm"
CNN = "cnn"
#: ``emb:NAME`` is registry classifier NAME on pretrained audio embeddings
EMBEDDING_PREFIX = "emb:"
#: classifiers of ``duygu music evaluate`` when none are named
DEFAULT_CLASSIFIERS: tuple[str, ...] = ("ann", "svm-rbf", "knn", "logreg", LSTM, CNN)
#: added to the defaults when an embedding model is given
DEFAULT_EMBEDDING_CLASSIFIERS: tuple[str, ...] = tuple(EMBEDDING_PREFIX + n for n in ("logreg", "svm-rbf", "knn"))
SEQUENCE_FEATURE_NAMES: tuple[str, ...] = (*audio.FRAME_FEATURE_NAMES, "onset_strength")
MUSIC_MODEL_KIND = "music"

ProgressCallback = Callable[[int, int], None]


def _pool(frames: NDArray[np.float32], onset: NDArray[np.float32], pool: int) -> NDArray[np.float32]:
    """Mean over consecutive groups of ``pool`` frames (the last partial group dropped)."""
    x = np.concatenate([frames, onset[:, None]], axis=1)
    n = (x.shape[0] // pool) * pool
    if n == 0:
        return x.mean(axis=0, keepdims=True)
    return x[:n].reshape(n // pool, pool, x.shape[1]).mean(axis=1)


@dataclass
class MusicLibrary:
    """Segments of a labelled library: what every kind of model learns from a row.

    ``dataset`` rows align with ``sequences`` rows (n_rows, steps, 32), ``row_file`` and
    ``row_frames`` (the file index and analysis-frame range of each row, into ``files`` and
    ``spectrograms``: one (N_BANDS, steps) log-mel array per file for the CNN) and
    ``embeddings`` (n_rows, dim; with an ``embedder``). ``skipped`` lists ``(path,
    reason)`` of files that were left out. A library read from a feature table has only
    the ``dataset``.
    """

    dataset: Dataset
    sequences: NDArray[np.float32] | None
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    spectrograms: list[NDArray[np.float32]] | None = None
    row_file: NDArray[np.intp] | None = None
    row_frames: NDArray[np.intp] | None = None
    embeddings: NDArray[np.float64] | None = None
    embedder: Any = None


def scan_library(root: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """``(file, label)`` of every non-hidden file under ``root/<label>/`` (sorted).

    Raises
    ------
    DataError
        ``root`` is not a folder, or it has fewer than two label folders with files.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"library {str(base)!r} must be a folder with one sub-folder per emotion")
    items: list[tuple[Path, str]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts):
                items.append((f, folder.name))
    labels = sorted({label for _, label in items})
    if len(labels) < 2:
        raise DataError(
            f"library {str(base)!r} must have >= 2 sub-folders (one per emotion) holding audio files, "
            f"found {labels or 'none'}"
        )
    return items


def load_library(root: str | os.PathLike[str], *, segment_s: float = SEGMENT_S, hop_s: float = SEGMENT_HOP_S,
                 pool_frames: int = POOL_FRAMES, max_duration_s: float | None = None,
                 progress: ProgressCallback | None = None, embedder: Any = None) -> MusicLibrary:
    """Analyse every file of a labelled library (see the module docstring).

    Files that cannot be decoded, or are shorter than one segment, are skipped and
    listed in ``skipped`` (and logged); the rest are used.

    Parameters
    ----------
    segment_s, hop_s : float
        Segment length and step, seconds (``segment_s`` >= :data:`processing.audio.MIN_TEMPO_S`).
    pool_frames : int
        Frames averaged into one LSTM step (8 frames = 186 ms).
    max_duration_s : float, optional
        Analyse only the first seconds of each file.
    embedder : models.embedding.AudioEmbedder, optional
        Also compute every segment's embedding (for ``emb:NAME`` classifiers).

    Raises
    ------
    DataError
        Bad parameters, or fewer than two classes left after skipping.
    """
    from models.cnn import log_mel

    if segment_s < audio.MIN_TEMPO_S:
        raise DataError(f"segment_s must be >= {audio.MIN_TEMPO_S} s (tempo needs it), got {segment_s}")
    if hop_s <= 0:
        raise DataError(f"hop_s must be > 0, got {hop_s}")
    if pool_frames < 1:
        raise DataError(f"pool_frames must be >= 1, got {pool_frames}")
    items = scan_library(root)
    base = Path(root)
    rows: list[NDArray[np.float64]] = []
    seqs: list[NDArray[np.float32]] = []
    labels: list[str] = []
    groups: list[str] = []
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    spectrograms: list[NDArray[np.float32]] = []
    row_file: list[int] = []
    row_frames: list[tuple[int, int]] = []
    embeddings: list[NDArray[np.float64]] = []
    if progress is not None:
        progress(0, len(items))
    for i, (path, label) in enumerate(items):
        rel = path.relative_to(base).as_posix()
        try:
            ff = audio.extract_frames(path, duration_s=max_duration_s)
            if ff.duration_s < segment_s:
                raise DataError(f"{path.name}: shorter than one segment ({ff.duration_s:.2f} s < {segment_s} s)")
            bounds = ff.segment_bounds(segment_s, hop_s)
            summaries = np.stack([ff.summary(a, b) for a, b in bounds])
            if embedder is not None:
                embeddings.append(embedder.embed_file(path, [_span_s(ff, a, b) for a, b in bounds]))
        except DataError as exc:
            log.warning("skipped %s: %s", rel, exc)
            skipped.append((rel, str(exc)))
            continue
        finally:
            if progress is not None:
                progress(i + 1, len(items))
        for (a, b), row in zip(bounds, summaries, strict=True):
            rows.append(row)
            seqs.append(_pool(ff.frames[a:b], ff.onset_envelope[a:b], pool_frames))
            labels.append(label)
            groups.append(rel)
            row_file.append(len(files))
            row_frames.append((a, b))
        files.append(rel)
        spectrograms.append(log_mel(ff.mel_db))
    if len(set(labels)) < 2:
        raise DataError(f"library {str(base)!r}: fewer than 2 emotions left after skipping {len(skipped)} file(s)")
    steps = min(s.shape[0] for s in seqs)
    group_arr = np.asarray(groups)
    meta: dict[str, Any] = {
        "source": f"music library {base}", "kind": MUSIC_MODEL_KIND, "segment_s": segment_s, "hop_s": hop_s,
        "pool_frames": pool_frames, "analysis_sfreq_hz": audio.ANALYSIS_SFREQ_HZ,
        "skipped": [{"path": p, "reason": r} for p, r in skipped], "files": len(files)}
    if embedder is not None:
        meta["embedding"] = embedder.describe()
    dataset = Dataset(
        X=np.asarray(rows, dtype=np.float64),
        y=np.asarray(labels),
        groups=group_arr,
        subjects=group_arr.copy(),
        feature_names=audio.summary_feature_names(),
        meta=meta,
    )
    sequences = np.stack([s[:steps] for s in seqs]).astype(np.float32)
    return MusicLibrary(dataset, sequences, files, skipped, spectrograms, np.asarray(row_file, dtype=np.intp),
                        np.asarray(row_frames, dtype=np.intp).reshape(-1, 2),
                        np.concatenate(embeddings) if embedder is not None else None, embedder)


def _span_s(ff: audio.FrameFeatures, start: int, stop: int) -> tuple[float, float]:
    """Seconds in the file of analysis frames ``start:stop`` of ``ff``."""
    return ff.offset_s + start / ff.frame_rate_hz, ff.offset_s + stop / ff.frame_rate_hz


# -- evaluation -------------------------------------------------------------------------
def default_classifiers(embedding: bool = False) -> list[str]:
    """The classifiers of ``duygu music evaluate`` when none are named."""
    return list(DEFAULT_CLASSIFIERS) + (list(DEFAULT_EMBEDDING_CLASSIFIERS) if embedding else [])


def parse_music_classifiers(text: str | Sequence[str] | None) -> list[str]:
    """Registry names, ``lstm``, ``cnn`` and ``emb:NAME``, validated, in the given order."""
    from models.registry import CLASSIFIERS, parse_classifiers

    if text is None:
        return default_classifiers()
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise DataError(f"classifiers must name at least one classifier, got {text!r}")
    names = []
    for item in items:
        base = item.removeprefix(EMBEDDING_PREFIX)
        if item in (LSTM, CNN):
            names.append(item)
            continue
        try:
            name = parse_classifiers([base])[0]
        except DataError:
            raise DataError(f"classifier must be one of {', '.join(CLASSIFIERS)}, {LSTM}, {CNN} or "
                            f"{EMBEDDING_PREFIX}NAME (NAME a registry classifier), got {item!r}") from None
        names.append(EMBEDDING_PREFIX + name if item.startswith(EMBEDDING_PREFIX) else name)
    return list(dict.fromkeys(names))


def uses_embedding(names: Sequence[str]) -> bool:
    """Whether any of ``names`` is an ``emb:NAME`` classifier."""
    return any(n.startswith(EMBEDDING_PREFIX) for n in names)


class MusicLearner(Learner):
    """The registry on clip summaries, the LSTM on frame sequences, the CNN on log-mel
    patches and the registry on embeddings (``emb:NAME``): one learner of the shared engine."""

    reports_roc_auc = True

    def __init__(self, library: MusicLibrary, lstm_params: dict[str, Any] | None = None,
                 cnn_params: dict[str, Any] | None = None) -> None:
        super().__init__(library.dataset.X)
        self.sequences = library.sequences
        self.spectrograms = library.spectrograms
        self.row_file = library.row_file
        self.row_frames = library.row_frames
        self.embeddings = library.embeddings
        self.lstm_params = dict(lstm_params or {})
        self.cnn_params = dict(cnn_params or {})

    def parse(self, classifiers: Sequence[str] | str | None) -> list[str]:
        return parse_music_classifiers(classifiers)

    def check(self, names: Sequence[str]) -> None:
        if LSTM in names and self.sequences is None:
            raise DataError("classifier 'lstm' needs frame sequences: evaluate a library folder, not a feature table")
        if CNN in names and self.spectrograms is None:
            raise DataError("classifier 'cnn' needs spectrograms: evaluate a library folder, not a feature table")
        emb = [n for n in names if n.startswith(EMBEDDING_PREFIX)]
        if emb and self.embeddings is None:
            raise DataError(f"classifier {emb[0]!r} needs embeddings: a library folder and --embedding PATH")

    def fit_predict_proba(self, name: str, random_state: int, y: NDArray[Any], train: NDArray[np.intp],
                          test: NDArray[np.intp], inner_groups: NDArray[Any] | None,
                          classes: Sequence[str]) -> tuple[NDArray[np.float64], dict[str, Any]]:
        if name == LSTM:
            from models.lstm import LstmClassifier

            assert self.sequences is not None
            clf = LstmClassifier(random_state=random_state, **self.lstm_params).fit(self.sequences[train], y[train])
            return align_proba(clf.predict_proba(self.sequences[test]), clf.classes_, classes), {}
        if name == CNN:
            from models.cnn import CnnClassifier

            X, labels = self.patches(train, y)
            cnn = CnnClassifier(random_state=random_state, **self.cnn_params).fit(X, labels)
            proba = np.stack([cnn.predict_clip(*self.row_span(i)) for i in test])
            return align_proba(proba, cnn.classes_, classes), {}
        if name.startswith(EMBEDDING_PREFIX):
            assert self.embeddings is not None
            return Learner(self.embeddings).fit_predict_proba(name.removeprefix(EMBEDDING_PREFIX), random_state, y,
                                                              train, test, inner_groups, classes)
        return super().fit_predict_proba(name, random_state, y, train, test, inner_groups, classes)

    def row_span(self, row: int) -> tuple[NDArray[np.float32], int, int]:
        """The spectrogram of row ``row``'s file and the row's CNN steps in it."""
        from models.cnn import frame_to_step

        assert self.spectrograms is not None and self.row_file is not None and self.row_frames is not None
        a, b = self.row_frames[row]
        return self.spectrograms[int(self.row_file[row])], frame_to_step(int(a)), frame_to_step(int(b))

    def patches(self, rows: NDArray[np.intp], y: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """The CNN patches of ``rows`` and their labels (each patch its row's)."""
        from models.cnn import patches

        parts = [patches(*self.row_span(int(i))) for i in rows]
        labels = np.concatenate([np.repeat(y[i], len(x)) for i, x in zip(rows, parts, strict=True)])
        return np.concatenate(parts), labels


def evaluate_library(library: MusicLibrary, protocol: str = "grouped",
                     classifiers: str | Sequence[str] | None = None, n_permutations: int = 0,
                     random_state: int = 0, lstm_params: dict[str, Any] | None = None,
                     progress: ProgressCallback | None = None, n_jobs: int = 1,
                     scheduler: str | None = None, cnn_params: dict[str, Any] | None = None,
                     permutation_reference: str | None = None) -> dict[str, Any]:
    """Evaluate music classifiers with the shared engine (:func:`models.evaluation.run_evaluation`).

    Parameters
    ----------
    classifiers : str or list of str, optional
        Registry names, ``lstm``, ``cnn``, ``emb:NAME`` (default: :func:`default_classifiers`,
        with the embedding ones when the library has embeddings).
    n_jobs, scheduler : as :func:`models.evaluation.run_evaluation` (local workers, or a
        dask.distributed scheduler's address).
    lstm_params, cnn_params : dict, optional
        Settings of :class:`models.lstm.LstmClassifier` and :class:`models.cnn.CnnClassifier`.
    permutation_reference : str, optional
        The classifier whose permuted runs give the chance level (default: the protocol's
        reference, shrinkage LDA); it need not be among ``classifiers``.

    Returns
    -------
    dict
        The ``duygu evaluate`` JSON shape: ``{"protocol", "chance", "results":
        [{"classifier", "split", "accuracy", "balanced_accuracy", "precision", "recall",
        "f1", "mcc", "confusion", "roc_auc"}], "leakage_gap"}``. The chance level is the
        majority-class rate, or, with ``n_permutations``, the mean accuracy of the
        permutation reference on the main split with permuted file labels.
    """
    if classifiers is None:
        classifiers = default_classifiers(library.embeddings is not None)
    names = parse_music_classifiers(classifiers)
    learner = MusicLearner(library, lstm_params, cnn_params)
    report = run_evaluation(library.dataset, protocol, names, n_permutations=n_permutations, n_jobs=n_jobs,
                            scheduler=scheduler, random_state=random_state, progress=progress,
                            learner=learner, permutation_reference=permutation_reference)
    return report.as_json()


def library_from_table(dataset: Dataset) -> MusicLibrary:
    """A feature-table dataset (``--features CSV``) as a library without sequences."""
    return MusicLibrary(dataset, None, sorted(set(dataset.groups.tolist())) if dataset.groups is not None else [])


# -- trained models ---------------------------------------------------------------------
@dataclass
class MusicModel:
    """A trained music-emotion model: a registry pipeline on clip summaries or on
    embeddings (skops), the LSTM or the CNN (torch).

    Use :meth:`load` / :meth:`save`, and :meth:`predict_file` (class -> probability: the
    mean over the file's segments, or over its patches for the CNN).
    """

    classifier: str
    estimator: Any
    classes: list[str]
    meta: dict[str, Any]
    embedder: Any = None

    @property
    def segment_s(self) -> float:
        return float(self.meta.get("segment_s", SEGMENT_S))

    @property
    def hop_s(self) -> float:
        return float(self.meta.get("hop_s", SEGMENT_HOP_S))

    def describe(self) -> str:
        """One line for a user: what the model is and what it reads."""
        if self.classifier == CNN:
            return "CNN on log-mel patches"
        if self.classifier == LSTM:
            return "LSTM on frame-feature sequences"
        if self.classifier.startswith(EMBEDDING_PREFIX):
            info = self.meta.get("embedding", {})
            return (f"{self.classifier.removeprefix(EMBEDDING_PREFIX)} on {info.get('model_type', '?')} embeddings "
                    f"({Path(str(info.get('path', '?'))).name}, layer {info.get('layer', '?')})")
        return f"{self.classifier} on clip summaries"

    def predict_features(self, ff: audio.FrameFeatures) -> dict[str, float]:
        """Probabilities of one analysed file (mean over its segments or patches).

        Raises
        ------
        DataError
            If the file is too short for the model.
        """
        name = Path(ff.info.path).name
        bounds = ff.segment_bounds(self.segment_s, self.hop_s)
        if self.classifier == LSTM:
            pool = int(self.meta.get("pool_frames", POOL_FRAMES))
            seqs = [_pool(ff.frames[a:b], ff.onset_envelope[a:b], pool) for a, b in bounds]
            steps = min(s.shape[0] for s in seqs)
            proba = self.estimator.predict_proba(np.stack([s[:steps] for s in seqs]))
        elif self.classifier == CNN:
            from models.cnn import log_mel

            try:
                proba = self.estimator.predict_clip(log_mel(ff.mel_db))[None, :]
            except DataError as exc:
                raise DataError(f"{name}: {exc}") from None
        elif self.classifier.startswith(EMBEDDING_PREFIX):
            proba = np.asarray(self.estimator.predict_proba(
                self.embedder.embed_file(ff.info.path, [_span_s(ff, a, b) for a, b in bounds])), dtype=np.float64)
        else:
            if ff.duration_s < audio.MIN_TEMPO_S:
                raise DataError(f"{name}: too short for this model ({ff.duration_s:.2f} s < {audio.MIN_TEMPO_S} s)")
            X = np.stack([ff.summary(a, b) for a, b in bounds])
            proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        est_classes = [str(c) for c in self.estimator.classes_]
        mean = align_proba(proba, est_classes, self.classes).mean(axis=0)
        return {c: float(p) for c, p in zip(self.classes, mean, strict=True)}

    def predict_file(self, path: str | os.PathLike[str], *, max_duration_s: float | None = None) -> dict[str, float]:
        """Probabilities of the emotion a file expresses (class -> probability, sum 1).

        Raises
        ------
        DataError
            Unreadable or too short files.
        """
        return self.predict_features(audio.extract_frames(path, duration_s=max_duration_s))

    def label_file(self, path: str | os.PathLike[str]) -> str:
        """The most probable class of :meth:`predict_file`."""
        proba = self.predict_file(path)
        return max(proba, key=proba.__getitem__)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model: torch weights (LSTM, CNN) or a skops bundle (the others)."""
        if self.classifier in (LSTM, CNN):
            self.estimator.save(path, meta=self.meta)
            return
        from models.bundle import save_bundle

        save_bundle(Path(path), self.estimator, self.meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MusicModel:
        """Read a model written by :meth:`save` (the format is recognised from the file).

        Raises
        ------
        ModelFormatError
            Missing, foreign or tampered files, a bundle that is not a music model, one
            trained on other clip features than this version computes, or an embedding
            model whose transformer folder is gone or changed.
        """
        p = Path(path)
        if not p.is_file():
            raise ModelFormatError(f"model file {str(p)!r} does not exist")
        if _is_torch_file(p):
            from models import deep
            from models.cnn import FORMAT as CNN_FORMAT
            from models.cnn import CnnClassifier
            from models.lstm import FORMAT as LSTM_FORMAT
            from models.lstm import LstmClassifier

            fmt, header, payload = deep.load_model_file(p)
            readers: dict[str, tuple[str, Any]] = {LSTM_FORMAT: (LSTM, LstmClassifier), CNN_FORMAT: (CNN, CnnClassifier)}
            if fmt not in readers:
                raise ModelFormatError(f"{p.name}: not a Duygu music model (format {fmt!r})")
            name, reader = readers[fmt]
            clf, meta = reader.from_payload(header, payload, p.name)
            if meta.get("kind") != MUSIC_MODEL_KIND:
                raise ModelFormatError(f"{p.name}: a {name.upper()} model, but not a music model (kind={meta.get('kind')!r})")
            return cls(name, clf, list(clf.classes_), meta)
        from models.bundle import load_bundle

        bundle = load_bundle(p)
        meta = dict(bundle.meta)
        if meta.get("kind") != MUSIC_MODEL_KIND:
            raise ModelFormatError(f"{p.name}: not a music model (kind={meta.get('kind')!r}); EEG models go to 'duygu predict'")
        classes = [str(c) for c in meta.get("classes", getattr(bundle.estimator, "classes_", []))]
        classifier = str(meta.get("classifier", "?"))
        embedder = None
        if classifier.startswith(EMBEDDING_PREFIX):
            from models.embedding import load_for

            embedder = load_for(meta, p.name)
        elif list(meta.get("feature_names", [])) != audio.summary_feature_names():
            n = len(meta.get("feature_names", []))
            raise ModelFormatError(f"{p.name}: trained on {n} clip features of an older Duygu, this version computes "
                                   f"{len(audio.summary_feature_names())} (tempo changed): train it again")
        return cls(classifier, bundle.estimator, classes, meta, embedder)


def _is_torch_file(path: Path) -> bool:
    """torch.save writes a zip whose members sit under one folder with a ``data.pkl``."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/data.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def train_music_model(library: MusicLibrary, classifier: str = "svm-rbf", random_state: int = 0,
                      lstm_params: dict[str, Any] | None = None,
                      cnn_params: dict[str, Any] | None = None) -> MusicModel:
    """Fit ``classifier`` (a registry name, ``lstm``, ``cnn`` or ``emb:NAME``) on every
    segment of the library."""
    name = parse_music_classifiers([classifier])[0]
    ds = library.dataset.validate()
    learner = MusicLearner(library, lstm_params, cnn_params)
    learner.check([name])
    meta: dict[str, Any] = {
        "kind": MUSIC_MODEL_KIND,
        "classifier": name,
        "classes": ds.classes,
        "segment_s": ds.meta.get("segment_s", SEGMENT_S),
        "hop_s": ds.meta.get("hop_s", SEGMENT_HOP_S),
        "pool_frames": ds.meta.get("pool_frames", POOL_FRAMES),
        "analysis_sfreq_hz": audio.ANALYSIS_SFREQ_HZ,
        "feature_names": ds.feature_names,
        "files": library.files,
        "rows": ds.n_rows,
        "training_data_sha256": ds.data_hash(),
        "random_state": random_state,
    }
    if name == LSTM:
        from models.lstm import LstmClassifier

        assert library.sequences is not None
        meta["feature_names"] = list(SEQUENCE_FEATURE_NAMES)
        clf = LstmClassifier(random_state=random_state, **(lstm_params or {})).fit(library.sequences, ds.y)
        return MusicModel(LSTM, clf, list(clf.classes_), meta)
    if name == CNN:
        from models.cnn import N_BANDS, PATCH_HOP_STEPS, PATCH_STEPS, STEP_RATE_HZ, CnnClassifier

        patches, labels = learner.patches(np.arange(ds.n_rows), ds.y)
        meta["feature_names"] = [f"log_mel_{b:02d}" for b in range(N_BANDS)]
        meta.update(patch_s=PATCH_STEPS / STEP_RATE_HZ, patch_hop_s=PATCH_HOP_STEPS / STEP_RATE_HZ,
                    patches=int(patches.shape[0]))
        cnn = CnnClassifier(random_state=random_state, **(cnn_params or {})).fit(patches, labels)
        return MusicModel(CNN, cnn, list(cnn.classes_), meta)
    from models.registry import final_pipeline, fit_classifier, make_classifier

    X = ds.X
    if name.startswith(EMBEDDING_PREFIX):
        assert library.embeddings is not None
        X = library.embeddings
        meta["feature_names"] = [f"embedding_{i:04d}" for i in range(X.shape[1])]
        meta["embedding"] = ds.meta.get("embedding") or library.embedder.describe()
    est = make_classifier(name.removeprefix(EMBEDDING_PREFIX), random_state)
    fit_classifier(est, X, ds.y, ds.groups)
    return MusicModel(name, final_pipeline(est), ds.classes, meta, library.embedder)


def describe_stimuli(paths: Sequence[str | os.PathLike[str]], model: MusicModel | None = None) -> list[dict[str, Any]]:
    """One row per stimulus for a stimulus table: features and the perceived emotion.

    Each row holds ``path``, ``duration_s``, ``tempo_bpm`` (None unless the tempo is
    confident), ``tempo_estimate_bpm``, ``tempo_confidence``, ``tempo_status``,
    ``energy_rms``, ``brightness_hz``, ``key``, ``mode``, ``warnings`` and, with a ``model``,
    ``perceived`` (most probable class) and ``perceived_probabilities``. A file that
    cannot be analysed gives ``{"path", "error"}`` (one line) instead; a file the model
    cannot read keeps its features and gets ``perceived_error``.
    """
    keys = ("duration_s", "tempo_bpm", "tempo_estimate_bpm", "tempo_confidence", "tempo_status", "energy_rms",
            "brightness_hz", "key", "mode", "warnings")
    rows: list[dict[str, Any]] = []
    for path in paths:
        try:
            rec = audio.analyse_file(path)
        except DataError as exc:
            rows.append({"path": str(path), "error": str(exc)})
            continue
        row: dict[str, Any] = {"path": str(path), **{k: rec[k] for k in keys}}
        if model is not None:
            row.update(perceived_fields(model, path))
        rows.append(row)
    return rows


def perceived_fields(model: MusicModel, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The perceived emotion of one file as row fields (``perceived_error`` if it fails)."""
    try:
        proba = model.predict_file(path)
    except DataError as exc:
        return {"perceived_error": str(exc)}
    return {"perceived": max(proba, key=proba.__getitem__), "perceived_probabilities": proba}
