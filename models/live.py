"""Live prediction: ring buffer -> causal features of the latest window -> probabilities.

:class:`LivePredictor` keeps a cursor into a source's ring buffer and feeds only the new
samples (``buffer.since(cursor)``) to a
:class:`processing.pipeline.OnlineFeatureExtractor` built from the bundle's preset, so
live features come from the same causal filter family as the training windows. Every
hop (default 0.25 s of new samples) it predicts the class probabilities of the latest
window and emits a :class:`Prediction` to its listeners. The filter keeps its state
between hops, the window sits in one array that the features read as frames in place,
and the model is the bundle's pipeline precomputed by :mod:`models.inference` (checked
against the pipeline when the predictor is built): an update costs the arithmetic, not
scikit-learn's per-call checks.

Gaps stay gaps: at a gap in the stream (the source's ring buffer records one for every
loss) or a reader overrun, the filter and window start afresh, and nothing is predicted
until a whole window of contiguous samples has followed -- exactly as training cuts
windows inside the pieces between gaps. A window that holds an artefact is predicted but
marked ``clean=False`` with the reason.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.errors import DataError, ModelFormatError
from models.bundle import Bundle, check_compatible, domain_warning

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One live prediction.

    Attributes
    ----------
    t : float
        Timestamp of the newest sample of the window (EEG clock, seconds).
    probabilities : dict of str to float
        Class -> probability (smoothed when smoothing is on); sums to 1.
    label : str
        The most probable class.
    latency_ms : float
        Processing time from reading the new samples to the probabilities.
    clean : bool
        False when the window holds a flagged artefact (glitch, flat, over-range).
    reason : str
        Why the window is not clean (``""`` when it is).
    """

    t: float
    probabilities: dict[str, float]
    label: str
    latency_ms: float
    clean: bool = True
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON line of ``duygu predict``: ``t``, ``probabilities``, ``label``,
        ``latency_ms``, ``clean``, ``reason``."""
        return {"t": self.t, "probabilities": dict(self.probabilities), "label": self.label,
                "latency_ms": self.latency_ms, "clean": self.clean, "reason": self.reason}


class LivePredictor:
    """Predict from a running source every ``hop_s`` seconds of new data.

    Parameters
    ----------
    bundle : Bundle
        Trained on EEG windows (it has channels, rate and preset).
    source : BaseSource
        Its ``buffer`` is read; ``channels`` and ``sfreq_hz`` must match the bundle.
    hop_s : float
        New data between predictions, seconds.
    smoothing : int
        Average the probabilities of the last ``smoothing`` predictions (0 or 1: off).
    warmup_s : float
        Data before the first window fed at start (lets the causal filter settle).

    Raises
    ------
    ModelFormatError
        The bundle has no preset (trained on a feature table) or another channel set or rate.
    DataError
        Bad ``hop_s`` or ``smoothing``.
    """

    def __init__(self, bundle: Bundle, source: Any, hop_s: float = 0.25, smoothing: int = 0,
                 warmup_s: float = 2.0) -> None:
        from processing.pipeline import OnlineFeatureExtractor
        from processing.presets import get_preset

        if not (hop_s > 0 and np.isfinite(hop_s)):
            raise DataError(f"hop_s must be > 0 seconds, got {hop_s!r}")
        if smoothing < 0:
            raise DataError(f"smoothing must be >= 0 predictions, got {smoothing!r}")
        check_compatible(bundle, tuple(source.channels), float(source.sfreq_hz))
        params = bundle.meta.get("preset_params") or bundle.meta.get("preset")
        if not params:
            raise ModelFormatError("the model has no feature preset; it was not trained on EEG windows")
        self.bundle = bundle
        self.source = source
        self.preset = get_preset(params)
        self.sfreq_hz = float(source.sfreq_hz)
        self.extractor = OnlineFeatureExtractor(self.preset, self.sfreq_hz, tuple(source.channels))
        n_expected = bundle.meta.get("n_features")
        if not bundle.reads_windows and n_expected is not None and int(n_expected) != self.extractor.n_features:
            raise ModelFormatError(
                f"the model expects {n_expected} features, preset {self.preset.name!r} makes {self.extractor.n_features}"
            )
        from models.inference import compile_pipeline

        row_shape = ((len(self.extractor.channels), self.extractor.window_samples) if bundle.reads_windows
                     else (self.extractor.n_features,))
        #: the bundle's pipeline, precomputed for one row at a time (checked against it)
        self.model = compile_pipeline(bundle.estimator, row_shape)
        #: a one-line warning when the bundle was trained on another kind of EEG (DEAP)
        self.domain_warning = domain_warning(bundle)
        if self.domain_warning:
            log.warning("%s", self.domain_warning)
        self.hop_s = float(hop_s)
        self.hop_samples = max(1, round(hop_s * self.sfreq_hz))
        self.smoothing = int(smoothing)
        self.classes = bundle.classes
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, self.smoothing))
        start = source.buffer.total - self.extractor.window_samples - round(warmup_s * self.sfreq_hz)
        self.cursor = max(0, start)
        # gaps before the first sample fed are behind us; one inside the warm-up is not
        self._gaps_seen = sum(1 for g in source.buffer.gaps if g.after_index < self.cursor - 1)
        self.gaps = 0  # gaps the stream had while predicting (each restarted the window)
        self.missed = 0
        self.n_predictions = 0
        self.error: BaseException | None = None
        self._listeners: list[Callable[[Prediction], None]] = []
        self._error_listeners: list[Callable[[BaseException], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()

    # -- listeners --------------------------------------------------------------------
    def add_listener(self, callback: Callable[[Prediction], None]) -> None:
        """Call ``callback(prediction)`` (from the predictor thread) on every prediction."""
        self._listeners.append(callback)

    def add_error_listener(self, callback: Callable[[BaseException], None]) -> None:
        """Call ``callback(exc)`` if the predictor thread stops on an error."""
        self._error_listeners.append(callback)

    # -- one update ---------------------------------------------------------------------
    def step(self) -> Prediction | None:
        """Read new samples, and predict if a window is ready and anything new arrived.

        Returns ``None`` when there is no new data or not yet a whole window.
        """
        with self._step_lock:
            t0 = time.perf_counter()
            buffer = self.source.buffer
            chunk = buffer.since(self.cursor)
            if chunk.missed:
                self.missed += chunk.missed
                self.extractor.reset()  # the window would straddle a hole
                log.warning("live predictor fell behind: %d samples overwritten", chunk.missed)
            if len(chunk) == 0:
                return None
            # the writer records a gap before it pushes the samples after it, so every gap
            # inside this chunk is known now; one at its very end is applied next time
            start = 0
            for gap in buffer.gaps_since(self._gaps_seen):
                cut = gap.after_index + 1 - chunk.first_index  # first row after the gap
                if cut >= len(chunk):
                    break
                if cut > start:
                    self.extractor.push(chunk.data[start:cut])
                self.extractor.reset()  # never a window across missing samples
                self._recent.clear()  # nor a smoothed prediction
                self.gaps += 1
                self._gaps_seen += 1
                start = max(start, cut)
            self.cursor = chunk.next_index
            if start < len(chunk):
                self.extractor.push(chunk.data[start:])
            if not self.extractor.ready:
                return None
            artefacts = self.extractor.window_artefacts
            rows = self.extractor.window() if self.bundle.reads_windows else self.extractor.features()
            proba = self.model.predict_proba(rows)[0]
            self._recent.append(proba)
            if self.smoothing > 1:
                proba = np.mean(np.stack(self._recent), axis=0)
            k = int(np.argmax(proba))
            latency_ms = (time.perf_counter() - t0) * 1000.0
            self.n_predictions += 1
            return Prediction(
                t=float(chunk.timestamps[-1]),
                probabilities={c: float(p) for c, p in zip(self.classes, proba, strict=True)},
                label=self.classes[k],
                latency_ms=latency_ms,
                clean=not artefacts,
                reason=f"artefact in the window: {', '.join(artefacts)}" if artefacts else "",
            )

    # -- thread -------------------------------------------------------------------------
    def start(self) -> LivePredictor:
        """Start the predictor thread (predicts every ``hop_s`` of new samples)."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="duygu-live-predictor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and join the thread; re-raise the error that ended it, if any."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        if self.error is not None:
            raise self.error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LivePredictor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                target = self.cursor + self.hop_samples - 1
                if not self.source.buffer.wait_for(target, timeout_s=0.1):
                    continue
                prediction = self.step()
                if prediction is None:
                    continue
                for callback in list(self._listeners):
                    callback(prediction)
        except BaseException as exc:  # surfaced: kept, logged, told to listeners, re-raised by stop()
            self.error = exc
            log.exception("live predictor stopped on an error")
            for on_error in list(self._error_listeners):
                try:
                    on_error(exc)
                except Exception:
                    log.exception("live predictor error listener failed")
