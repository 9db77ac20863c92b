"""The listening-session runner (engine: no Qt, no sounddevice).

A session is ``baseline -> (stimulus -> silence -> label) x N``. The runner

* opens the session in the :class:`~acquisition.store.sqlite.SessionStore` and records the
  source's EEG with a :class:`~acquisition.store.recorder.StoreRecorder` (committed at least
  every 0.5 s);
* plays each stimulus through a :class:`Player` (the app's ``StimulusPlayer``, or the
  silent :class:`ClockPlayer`) that returns onset/offset times on the EEG clock;
* stores markers and trials (onset/offset sample indices found in the source buffer's
  timestamps with ``searchsorted``), and publishes markers on an LSL outlet;
* takes labels automatically (each stimulus's intended emotion) or from a prompt
  (:meth:`SessionRunner.submit_label`, called by the GUI or the CLI);
* with the simulated headset, sets its hidden state to the stimulus's emotion during
  the music and back to ``neutral`` in silences and the baseline;
* is a state machine (docs/PROTOCOL.md, "Session states"): ``running`` (baseline,
  stimulus, silence, label) -> ``paused`` (operator, or faults) -> ``running``, ending
  ``completed``, ``aborted`` (operator), ``interrupted`` (the process ended) or
  ``failed`` (a fault outlasted ``max_outage_s``, or the source stopped for good). A
  fault -- the source lost, the store not writable, the audio output gone, a stimulus
  file unreadable -- pauses the session and stops the stimulus; when every fault has
  cleared (the source streams again, a write succeeds, the output reopens, the file
  reads) the session resumes **by itself**. An operator pause waits for
  :meth:`SessionRunner.resume`. A trial cut short by a pause or a fault, or whose
  EEG holds a loss, is kept as ``interrupted`` (never labelled) and repeated. Every
  pause, fault, resume and failure is a stored marker; nothing already recorded is
  lost and writes that failed are retried.

``time_scale`` divides every duration (tests, demos). With the simulated source at
``speed == time_scale`` each trial still holds ``music_s * 128`` samples.

Listeners receive :class:`RunnerEvent` objects (from the runner thread).
"""

from __future__ import annotations

import enum
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np

from acquisition.errors import DuyguError, ProtocolError, SourceError, StoreError
from acquisition.session.protocol import Protocol, Stimulus
from acquisition.sources.base import BaseSource, SourceStatus, local_clock
from acquisition.store.marker_codes import marker_codes
from acquisition.store.recorder import StoreRecorder
from acquisition.store.sqlite import check_label, check_sam

log = logging.getLogger(__name__)

#: SAM ratings used for automatic labels when the protocol asks for SAM
AUTO_SAM: dict[str, tuple[int, int]] = {"happy": (7, 7), "sad": (3, 3), "relaxing": (7, 3), "tense": (3, 7)}


@dataclass(frozen=True)
class PlaybackTimes:
    """When a stimulus started and ended, on the EEG clock (LSL ``local_clock``)."""

    onset_t: float
    offset_t: float
    stopped_early: bool = False
    glitches: int = 0  # audio underruns (or other stream errors) while it played


class Player(TypingProtocol):
    """What the runner needs from a stimulus player."""

    def open(self) -> Any: ...

    def close(self) -> None: ...

    def play(self, stimulus: Stimulus, duration_s: float) -> float | None:
        """Start playing; return once playback has started, with the onset time (EEG
        clock) if already known."""

    def wait(self, timeout_s: float | None = None) -> PlaybackTimes | None:
        """Block until playback ended; ``None`` on timeout."""

    def stop(self) -> PlaybackTimes | None:
        """Stop playback now (thread-safe) and return its times."""


class ClockPlayer:
    """A silent player: "plays" for the duration, times from the EEG clock.

    Used with ``--no-audio`` and when no audio output exists (the session still runs,
    its markers then mark the intended, not the heard, onsets).
    """

    def __init__(self) -> None:
        self._onset: float | None = None
        self._duration = 0.0
        self._ended = threading.Event()
        self._ended.set()
        self._offset: float | None = None
        self._stopped = False

    def open(self) -> ClockPlayer:
        return self

    def close(self) -> None:
        self.stop()

    def play(self, stimulus: Stimulus, duration_s: float) -> float | None:
        self._ended.clear()
        self._stopped = False
        self._offset = None
        self._duration = float(duration_s)
        self._onset = local_clock()
        return self._onset

    def wait(self, timeout_s: float | None = None) -> PlaybackTimes | None:
        if self._onset is None:
            return None
        remaining = self._onset + self._duration - local_clock()
        if timeout_s is not None and remaining > timeout_s:
            if not self._ended.wait(timeout_s):
                return None
        elif remaining > 0:
            self._ended.wait(remaining)
        if self._offset is None:
            self._offset = min(local_clock(), self._onset + self._duration)
            self._ended.set()
        return PlaybackTimes(self._onset, self._offset, self._stopped)

    def stop(self) -> PlaybackTimes | None:
        if self._onset is None:
            return None
        if not self._ended.is_set():
            self._stopped = True
            self._offset = local_clock()
            self._ended.set()
        return PlaybackTimes(self._onset, self._offset or local_clock(), self._stopped)


class RunnerState(enum.StrEnum):
    """Where a session is."""

    IDLE = "idle"
    STARTING = "starting"
    BASELINE = "baseline"
    STIMULUS = "stimulus"
    SILENCE = "silence"
    LABEL = "label"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True)
class RunnerEvent:
    """Something a listener (GUI, CLI) may show.

    ``kind`` is one of ``state``, ``session_start``, ``trial_start``, ``stim_on``,
    ``stim_off``, ``label_prompt``, ``label``, ``trial_end``, ``trial_interrupted``,
    ``paused``, ``resumed``, ``fault`` (with ``fault`` the kind: ``source``, ``store``,
    ``audio``, ``stimulus``), ``fault_cleared``, ``store_error`` and ``source_lost``
    (faults of those kinds, kept for listeners that know only them), ``quality_error``
    (the headset's contact-quality stream failed), ``failed``, ``session_end``.
    """

    kind: str
    state: RunnerState
    t: float
    trial: int | None = None  # 0-based position in the session's order
    n_trials: int = 0
    stimulus_id: str | None = None
    label: str | None = None
    message: str = ""
    labels: tuple[str, ...] = ()
    progress: float = 0.0  # 0..1 of the session (trials done / n)
    fault: str | None = None  # source, store, audio or stimulus (fault events)
    repeated: bool = True  # trial_interrupted: the trial comes again (False when the session is ending)


@dataclass
class TrialRecord:
    """A trial as the runner knows it."""

    position: int
    stimulus: Stimulus
    onset_t: float
    offset_t: float
    onset_index: int | None
    offset_index: int | None
    trial_id: int | None = None
    label: str | None = None
    valence: int | None = None
    arousal: int | None = None
    status: str = "complete"  # or "interrupted" (kept, never labelled, repeated)
    reason: str = ""  # why an interrupted trial was interrupted
    contact: dict[str, Any] | None = None  # worst contact quality during the stimulus

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position, "stimulus_id": self.stimulus.id, "genre": self.stimulus.genre,
            "intended": self.stimulus.emotion, "label": self.label, "valence": self.valence,
            "arousal": self.arousal, "onset_t": self.onset_t, "offset_t": self.offset_t,
            "onset_index": self.onset_index, "offset_index": self.offset_index, "trial_id": self.trial_id,
            "status": self.status, "reason": self.reason, "contact": self.contact,
        }


@dataclass
class SessionResult:
    """What :meth:`SessionRunner.run` returns."""

    session_id: int
    status: str
    trials: list[TrialRecord] = field(default_factory=list)
    samples_recorded: int = 0
    pauses: int = 0
    messages: list[str] = field(default_factory=list)
    interrupted: list[TrialRecord] = field(default_factory=list)
    reason: str = ""  # why a failed session failed (one line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "status": self.status, "reason": self.reason,
            "trials": [t.as_dict() for t in self.trials], "samples_recorded": self.samples_recorded,
            "pauses": self.pauses, "messages": list(self.messages),
            "interrupted_trials": [t.as_dict() for t in self.interrupted],
        }


@dataclass(frozen=True)
class LabelResponse:
    label: str
    valence: int | None = None
    arousal: int | None = None


class _Interrupted(Exception):
    pass


#: How often a paused session re-checks its faults.
PROBE_INTERVAL_S = 0.5


class SessionRunner:
    """Run one listening session.

    Parameters
    ----------
    protocol : Protocol
        A validated protocol (run :func:`~acquisition.session.protocol.preflight` first).
    source : BaseSource
        The EEG source (connected here if it is not yet).
    store : SessionStore
        Open, writable store.
    participant : str
        Pseudonymous participant id.
    player : Player, optional
        Stimulus player; a silent :class:`ClockPlayer` if ``None``.
    labels : {"auto", "prompt"}
        ``auto``: each stimulus's intended emotion; ``prompt``: wait for
        :meth:`submit_label` after every trial (a ``label_prompt`` event is sent).
    time_scale : float
        Every duration is divided by it.
    seed : int, optional
        Order seed (default: derived from the protocol seed and the participant).
    markers : MarkerOutlet, optional
        LSL outlet for markers (``None``: markers are only stored).
    markers_wait_s : float
        The session's first marker waits this long at most for a recorder (LabRecorder,
        EmotivPRO) to connect to ``markers``, so it records the whole session.
    source_spec : str
        How the source was named (stored with the session).
    max_outage_s : float
        A fault (or several) lasting longer than this ends the session as ``failed``.
    quality : QualityReader, optional
        The headset's contact quality (default: the source's own
        :meth:`~acquisition.sources.base.BaseSource.quality_reader`, if it has one); the
        worst quality during each trial is stored with the trial.
    quality_wait_s : float
        Before the session starts, wait this long at most for the first quality reading
        (no wait when the first search finds no quality stream).
    """

    def __init__(self, protocol: Protocol, source: BaseSource, store: Any, participant: str, *,
                 player: Player | None = None, labels: str = "auto", time_scale: float = 1.0,
                 seed: int | None = None, markers: Any = None, source_spec: str = "",
                 connect_timeout_s: float = 10.0, max_outage_s: float = 120.0, quality: Any = None,
                 markers_wait_s: float = 5.0, quality_wait_s: float = 5.0) -> None:
        if labels not in ("auto", "prompt"):
            raise ProtocolError(f"labels must be 'auto' or 'prompt', got {labels!r}")
        if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0):
            raise ProtocolError(f"time_scale must be a number > 0, got {time_scale!r}")
        if not (isinstance(max_outage_s, (int, float)) and math.isfinite(max_outage_s) and max_outage_s > 0):
            raise ProtocolError(f"max_outage_s must be a number of seconds > 0, got {max_outage_s!r}")
        self.protocol = protocol
        self.source = source
        self.store = store
        self.participant = participant
        self.player: Player = player if player is not None else ClockPlayer()
        self.label_mode = labels
        self.time_scale = float(time_scale)
        self.seed = protocol.participant_seed(participant, seed)
        self.order = protocol.ordered(participant, self.seed)
        self.markers = markers
        self.markers_wait_s = float(markers_wait_s)
        self.quality_wait_s = float(quality_wait_s)
        self.source_spec = source_spec or getattr(source, "kind", "")
        self.connect_timeout_s = connect_timeout_s
        self.max_outage_s = float(max_outage_s)
        self.quality = quality
        self._own_quality = False
        self.session_id: int | None = None
        self.trials: list[TrialRecord] = []
        self.interrupted: list[TrialRecord] = []
        self.recorder: Any = None
        self._state = RunnerState.IDLE
        self._cond = threading.Condition()
        self._operator_paused = False
        self._faults: dict[str, str] = {}  # kind -> message, while the fault lasts
        self._outage_since: float | None = None  # monotonic time the current outage began
        self._failure = ""  # why the session failed
        self._aborted = False
        self._early_status = "aborted"  # stored status of a session ended early
        self._pauses = 0
        self._stimulus: Stimulus | None = None  # the stimulus of the current trial
        self._pending: list[tuple[str, Callable[[], Any]]] = []  # store writes that failed
        self._pending_lock = threading.RLock()
        self._quality_error = ""  # the contact-quality reader's last error told
        self._onset_stored: tuple[str, float] | None = None  # (stimulus, onset) stored at its onset
        self._labels: queue.Queue[LabelResponse | None] = queue.Queue()
        self._listeners: list[Callable[[RunnerEvent], None]] = []
        self._thread: threading.Thread | None = None
        self._result: SessionResult | None = None
        self._error: BaseException | None = None
        self._active = False
        self._messages: list[str] = []
        self._position: int | None = None

    # -- public API -----------------------------------------------------------------------
    @property
    def state(self) -> RunnerState:
        return self._state

    @property
    def n_trials(self) -> int:
        return len(self.order)

    @property
    def paused(self) -> bool:
        """True while the operator paused the session or a fault holds it."""
        return self._operator_paused or bool(self._faults)

    @property
    def faults(self) -> dict[str, str]:
        """The faults holding the session now (kind -> message)."""
        with self._cond:
            return dict(self._faults)

    def add_listener(self, callback: Callable[[RunnerEvent], None]) -> None:
        """Call ``callback(event)`` for every :class:`RunnerEvent`."""
        self._listeners.append(callback)

    def scaled(self, seconds: float) -> float:
        """A protocol duration after ``time_scale``."""
        return seconds / self.time_scale

    def start(self) -> SessionRunner:
        """Run the session in a background thread (see :meth:`join`)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run_in_thread, name="duygu-session", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float | None = None) -> SessionResult | None:
        """Wait for a :meth:`start`-ed session; re-raise its error; ``None`` on timeout."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return None
        if self._error is not None:
            raise self._error
        return self._result

    def _ended(self) -> bool:
        return self._aborted or self._state in (RunnerState.COMPLETED, RunnerState.ABORTED, RunnerState.INTERRUPTED,
                                                RunnerState.FAILED)

    def pause(self, reason: str = "operator") -> None:
        """Operator pause (thread-safe): a stimulus being played is stopped and repeated;
        the session waits for :meth:`resume`."""
        with self._cond:
            if self._ended() or self._operator_paused:
                return
            was_paused = self.paused
            self._operator_paused = True
            if not was_paused:
                self._pauses += 1
            self._cond.notify_all()
        self._stop_stimulus()

    def resume(self) -> bool:
        """End an operator pause and re-check every fault now ("Resume now", thread-safe).

        Returns ``True`` if the session runs again; ``False`` (a ``paused`` event says
        why) while a fault still holds it -- the session then resumes by itself when
        the fault clears.
        """
        with self._cond:
            self._operator_paused = False
            self._cond.notify_all()
        if not self._faults:
            return True
        self._probe()
        with self._cond:
            faults = dict(self._faults)
        if faults:
            self._emit("paused", message="cannot resume: " + "; ".join(faults.values()))
            return False
        return True

    def abort(self) -> None:
        """End the session early (thread-safe); it is stored as ``aborted``."""
        self._stop_early("aborted")

    def interrupt(self) -> None:
        """End the session early because the app is closing (thread-safe); it is stored as
        ``interrupted`` (the status a crash leaves), not as an operator's ``aborted``."""
        self._stop_early("interrupted")

    def _stop_early(self, status: str, reason: str = "") -> None:
        with self._cond:
            if not self._aborted:
                self._early_status = status
                self._failure = reason
            self._aborted = True
            self._cond.notify_all()
        self._labels.put(None)
        self._stop_stimulus()

    def _stop_stimulus(self) -> None:
        if self._state != RunnerState.STIMULUS:
            return
        try:
            self.player.stop()
        except Exception as exc:  # a dead audio device cannot even stop: it is stopped
            log.warning("stopping the stimulus failed: %s", exc)

    # -- faults ---------------------------------------------------------------------------
    def _fault(self, kind: str, message: str) -> None:
        """A fault began (thread-safe): pause, stop the stimulus, store a marker."""
        with self._cond:
            if self._ended():
                return
            new = kind not in self._faults
            was_paused = self.paused
            self._faults[kind] = message
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            if not was_paused:
                self._pauses += 1
            self._cond.notify_all()
        if not new:
            return
        log.warning("session fault (%s): %s", kind, message)
        if message not in self._messages:
            self._messages.append(message)
        self._emit("fault", message=message, fault=kind)
        if kind in ("source", "store"):  # the event names listeners knew before faults had kinds
            self._emit("source_lost" if kind == "source" else "store_error", message=message, fault=kind)
        self._stop_stimulus()
        # a store fault's marker waits with the other writes and is stored, with its own
        # time, when the store works again
        self._marker(f"fault:{kind}:{message}", local_clock())

    def _clear_fault(self, kind: str) -> None:
        with self._cond:
            if kind not in self._faults:
                return
            del self._faults[kind]
            if not self._faults:
                self._outage_since = None
            self._cond.notify_all()
        self._marker(f"fault_cleared:{kind}", local_clock())
        self._emit("fault_cleared", message=f"{kind} fault cleared", fault=kind)

    def _fail(self, reason: str) -> None:
        """End the session as ``failed`` (thread-safe), with a one-line reason.

        The reason reaches the caller in the ``session_end`` event and the result (the CLI
        prints it as its last line), so it is logged at INFO, not printed twice."""
        log.info("session failed: %s", reason)
        self._stop_early("failed", reason)

    def _probe(self) -> None:
        """Re-check every fault and clear those that are gone (called while paused)."""
        faults = self.faults
        if "source" in faults and self.source.status == SourceStatus.STREAMING:
            self._clear_fault("source")
        if "store" in faults:
            recorder_ok = self.recorder is None or not self.recorder.paused or self.recorder.flush()
            if recorder_ok and self._flush_pending():
                self._clear_fault("store")
        if "audio" in faults:
            try:
                self.player.close()
                self.player.open()
            except Exception as exc:
                with self._cond:
                    if "audio" in self._faults:
                        self._faults["audio"] = f"audio output lost: {_one_line(exc)}"
            else:
                self._clear_fault("audio")
        if "stimulus" in faults and self._stimulus is not None:
            from acquisition.session.protocol import read_segment

            try:
                read_segment(self._stimulus.path, self._stimulus.start_s, 0.05)
            except DuyguError:
                pass
            else:
                self._clear_fault("stimulus")

    def _check_outage(self) -> None:
        with self._cond:
            since, faults = self._outage_since, dict(self._faults)
        if since is not None and faults and time.monotonic() - since > self.max_outage_s:
            kinds = "; ".join(faults.values())
            self._fail(f"a fault outlasted --max-outage-s {self.max_outage_s:g}: {kinds}")

    def submit_label(self, label: str, valence: int | None = None, arousal: int | None = None) -> None:
        """Answer a label prompt (thread-safe).

        Raises
        ------
        LabelError
            (a ProtocolError) The label is not in the protocol's label set, or a SAM
            rating is not 1-9.
        """
        check_label(label, self.protocol.labels)
        valence, arousal = check_sam("valence", valence), check_sam("arousal", arousal)
        if self.protocol.sam and (valence is None or arousal is None):
            raise ProtocolError("this protocol asks for SAM ratings: give valence and arousal (1-9)")
        self._labels.put(LabelResponse(label, valence, arousal))

    # -- the session ----------------------------------------------------------------------
    def run(self) -> SessionResult:
        """Run the whole session in this thread; return when it ends.

        Raises
        ------
        SourceError
            The source cannot be connected, or is not streaming (nothing is stored then:
            a session never starts on a lost or stopped source).
        StoreError
            The session cannot be created in the store.
        """
        self._set_state(RunnerState.STARTING)
        self._require_streaming()
        if self.quality is None:
            self.quality = self.source.quality_reader(on_error=self._on_quality_error)
            self._own_quality = self.quality is not None
            if self.quality is not None:
                self.quality.start()
        if self.quality is not None and self.quality_wait_s > 0:
            # so the first trial's contact is known: wait for the first reading, unless
            # the first search finds no quality stream at all
            if self.quality.wait_until_ready(self.quality_wait_s) is None:
                log.info("no contact-quality reading from the source; trials store no contact quality")
        try:
            self.player.open()
        except DuyguError:
            self._set_state(RunnerState.FAILED)
            raise
        info = self.source.info.as_dict() if self.source.info is not None else {}
        protocol = self.protocol.as_dict()
        protocol.update({
            "order_ids": [s.id for s in self.order], "order_seed": self.seed, "time_scale": self.time_scale,
            "label_mode": self.label_mode, "source_speed": getattr(self.source, "speed", 1.0),
            "max_outage_s": self.max_outage_s,
        })
        codes = marker_codes([s.id for s in self.protocol.stimuli], self.protocol.labels)
        protocol["emotivpro_marker_codes"] = codes  # stored with every session, exported
        if self.markers is not None and getattr(self.markers, "emotivpro", False):
            self.markers.set_codes(codes)
        try:
            self.session_id = self.store.start_session(self.participant, protocol, self.source_spec, info)
        except StoreError:
            self._set_state(RunnerState.FAILED)
            self.player.close()
            raise
        self.recorder = StoreRecorder(self.source, self.store, self.session_id,
                                      start_index=self.source.buffer.total)
        self.recorder.add_error_listener(self._on_store_error)
        self.recorder.add_recovery_listener(self._on_store_recovered)
        self._active = True
        self.source.add_status_listener(self._on_source_status)
        self.recorder.start()
        status = "aborted"
        try:
            if self.markers is not None and not self.markers.has_consumers():
                # a recorder connecting now would miss the first markers: give it a moment
                self.markers.wait_for_consumers(self.markers_wait_s)
            self._marker("session_start", local_clock())
            self._emit("session_start", message=f"session {self.session_id}: {len(self.order)} trials")
            if self.source.status != SourceStatus.STREAMING:  # lost between the check and now
                self._on_source_status(self.source.status)
            if self.protocol.baseline_s > 0:
                self._baseline()
            position = 0
            while position < len(self.order):
                self._position = position
                if self._trial(position, self.order[position]):
                    position += 1
            status = "completed"
        except _Interrupted:
            status = self._early_status
        except BaseException:
            status = self._early_status
            self._set_state(RunnerState.FAILED)
            raise
        finally:
            self._active = False
            self._set_neutral()
            self._finish(status)
        return self._result  # type: ignore[return-value]

    def _require_streaming(self) -> None:
        """Connect the source if it is not yet; refuse unless it streams."""
        status = self.source.status
        if status == SourceStatus.LOST:
            reason = f" ({self.source.last_error})" if self.source.last_error else ""
            self._set_state(RunnerState.FAILED)
            raise SourceError(f"source {self.source_spec!r} is {status}{reason}: a session starts only on a "
                              "streaming source; wait until it streams again")
        if status in (SourceStatus.IDLE, SourceStatus.STOPPED):
            self.source.connect(self.connect_timeout_s)
        if not self.source.wait_for_status(SourceStatus.STREAMING, self.connect_timeout_s):
            self._set_state(RunnerState.FAILED)
            raise SourceError(f"source {self.source_spec!r} is not streaming after {self.connect_timeout_s:g} s "
                              f"(status {self.source.status}): a session starts only on a streaming source")

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            if isinstance(exc, DuyguError):  # told to the user in one line by the caller
                log.info("session failed: %s", exc)
            else:
                log.exception("session failed")
            self._error = exc
            self._emit("session_end", message=f"session failed: {exc}")

    def _finish(self, status: str) -> None:
        if status == "failed" or self._state == RunnerState.FAILED:
            self._set_state(RunnerState.FAILED)
        else:
            self._set_state({"completed": RunnerState.COMPLETED, "interrupted": RunnerState.INTERRUPTED}.get(
                status, RunnerState.ABORTED))
        t_end = local_clock()
        try:
            self.player.stop()
        except Exception as exc:  # a dead audio device: there is nothing left to stop
            log.warning("stopping the player at the end failed: %s", exc)
        try:
            self.player.close()
        except Exception as exc:
            log.warning("closing the player failed: %s", exc)
        stats: dict[str, Any] = self.recorder.stop() if self.recorder is not None else {}
        if self._own_quality and self.quality is not None:
            self.quality.stop()
        if status == "failed":
            self._marker(f"session_failed:{self._failure}", t_end)
            self._messages.append(f"failed: {self._failure}")
        self._marker("session_end", t_end)
        self._flush_pending()
        for text, _ in self._pending:
            self._messages.append(f"not stored: {text}")
        try:
            self.store.finish_session(self.session_id, status)
        except StoreError as exc:
            self._messages.append(f"session status not stored ({exc}); it will show as interrupted")
        if stats.get("last_error") and stats.get("paused"):
            self._messages.append(f"EEG writing failed at the end: {stats['last_error']}")
        self._result = SessionResult(
            session_id=int(self.session_id or 0), status=status, trials=list(self.trials),
            samples_recorded=int(stats.get("samples_written", 0) or 0), pauses=self._pauses,
            messages=list(self._messages), interrupted=list(self.interrupted), reason=self._failure,
        )
        if status == "failed":
            self._emit("failed", message=self._failure)
        self._emit("session_end", message=f"session {self.session_id} {status}")

    def _baseline(self) -> None:
        while True:
            self._hold()
            self._set_state(RunnerState.BASELINE)
            self._set_neutral()
            t0 = local_clock()
            self._marker("baseline_start", t0)
            if self._sleep(self.scaled(self.protocol.baseline_s)):
                self._marker("baseline_end", local_clock())
                return
            self._marker("baseline_interrupted", local_clock())

    def _trial(self, position: int, stim: Stimulus) -> bool:
        """One trial; ``False`` if it was interrupted (it is then kept as interrupted and
        repeated)."""
        self._hold()
        self._stimulus = stim
        self._onset_stored = None
        self._emit("trial_start", trial=position, stimulus_id=stim.id)
        self._set_state(RunnerState.STIMULUS)
        self._set_sim_state(stim.emotion)
        duration_s = self.scaled(self.protocol.music_s)
        if self.paused or self._aborted:
            self._set_neutral()
            return False
        times = self._play(stim, duration_s)
        self._set_neutral()
        if times is None:  # the stimulus never started (a fault): nothing was presented
            return False
        reason = self._interruption(times)
        onset_index = self._index_at(times.onset_t)
        offset_index = self._index_at(times.offset_t) if not reason else self._index_at(times.offset_t, wait=False)
        if not reason:
            reason = self._loss_inside(onset_index, offset_index)
        if times.glitches:
            message = f"audio glitch: {times.glitches} underrun(s) while {stim.id} played"
            self._messages.append(message)
            self._marker(f"audio_glitch:{stim.id}:{times.glitches}", times.offset_t)
        if self._onset_stored != (stim.id, times.onset_t):  # its onset was not known at once
            self._store_marker(f"stim_on:{stim.id}", times.onset_t, onset_index)
        self._onset_stored = None
        self._marker(f"stim_off:{stim.id}", times.offset_t, offset_index)
        record = TrialRecord(position, stim, times.onset_t, times.offset_t, onset_index, offset_index)
        record.contact = self._contact(times.onset_t, times.offset_t)
        if record.contact and record.contact["bad_channels"] and not reason:
            message = f"bad contact during {stim.id}: {', '.join(record.contact['bad_channels'])}"
            self._messages.append(message)
            self._emit("contact", trial=position, stimulus_id=stim.id, message=message)
        if reason:
            record.status, record.reason = "interrupted", reason
            self.interrupted.append(record)
            self._store("interrupted trial " + stim.id, lambda: self._add_trial(record))
            self._marker(f"trial_interrupted:{stim.id}", times.offset_t, offset_index)
            self._emit("trial_interrupted", trial=position, stimulus_id=stim.id, message=reason,
                       repeated=not self._ended())
            return False
        self.trials.append(record)
        self._store("trial " + stim.id, lambda: self._add_trial(record))
        self._emit("stim_off", trial=position, stimulus_id=stim.id)

        self._set_state(RunnerState.SILENCE)
        while not self._sleep(self.scaled(self.protocol.silence_s)):
            self._hold()
            self._set_state(RunnerState.SILENCE)

        self._set_state(RunnerState.LABEL)
        response = self._ask_label(position, stim)
        record.label, record.valence, record.arousal = response.label, response.valence, response.arousal
        self._marker(f"label:{response.label}", local_clock())
        self._store("label of " + stim.id, lambda: self._set_label(record))
        self._emit("label", trial=position, stimulus_id=stim.id, label=response.label)
        self._emit("trial_end", trial=position, stimulus_id=stim.id, label=response.label)
        return True

    def _play(self, stim: Stimulus, duration_s: float) -> PlaybackTimes | None:
        """Play ``stim`` to its end (or until a pause or a fault stops it); ``None`` if it
        could not start (an audio or stimulus fault is then raised and the trial repeats)."""
        from acquisition.session.protocol import read_segment

        try:
            onset_t = self.player.play(stim, duration_s)
        except ProtocolError as exc:  # the file went away or no longer decodes
            self._fault("stimulus", f"stimulus {stim.id!r} unreadable: {_one_line(exc)}")
            return None
        except Exception as exc:  # the audio output failed (device gone, server killed)
            try:  # which one is it? the file may be the problem
                read_segment(stim.path, stim.start_s, 0.05) if not isinstance(self.player, ClockPlayer) else None
            except DuyguError as exc2:
                self._fault("stimulus", f"stimulus {stim.id!r} unreadable: {_one_line(exc2)}")
            else:
                self._fault("audio", f"audio output lost: {_one_line(exc)}")
            return None
        if onset_t is not None:
            if self.markers is not None:
                self.markers.push(f"stim_on:{stim.id}", onset_t)
            # stored now, not when the trial ends: a crash mid-stimulus still leaves the onset
            index = self._index_at(onset_t, timeout_s=1.0)
            if index is not None:
                self._store_marker(f"stim_on:{stim.id}", onset_t, index)
                self._onset_stored = (stim.id, onset_t)
        self._emit("stim_on", trial=self._position, stimulus_id=stim.id)
        if self.paused or self._aborted:
            self._stop_stimulus()
        try:
            times = self.player.wait(duration_s + 10.0)
            if times is None:
                times = self.player.stop()
        except Exception as exc:
            self._fault("audio", f"audio output lost while {stim.id} played: {_one_line(exc)}")
            times = None
        if times is None:
            if "audio" not in self.faults:
                self._fault("audio", f"audio output stopped answering while {stim.id} played")
            if onset_t is None:
                return None  # when it began is unknown: nothing can be kept
            # the presentation began and was cut short: it is kept as an interrupted trial
            return PlaybackTimes(onset_t, max(onset_t, local_clock()), stopped_early=True)
        if onset_t is None and self.markers is not None:
            self.markers.push(f"stim_on:{stim.id}", times.onset_t)
        return times

    def _contact(self, t0: float, t1: float) -> dict[str, Any] | None:
        """The worst contact quality the headset reported during ``[t0, t1]``."""
        if self.quality is None:
            return None
        reading = self.quality.worst_between(t0, t1)
        if reading is None:
            return None
        return {**reading.as_json(), "bad_channels": reading.bad_channels()}

    def _interruption(self, times: PlaybackTimes) -> str:
        """Why a played stimulus does not make a complete trial ("" if it does)."""
        if times.stopped_early:
            faults = self.faults
            if faults:
                return "; ".join(faults.values())
            with self._cond:
                if self._aborted:  # the session is ending: say why, not "paused"
                    return self._failure or f"session {self._early_status}"
            return "paused by the operator"
        if self.faults:
            return "; ".join(self.faults.values())
        if self.source.status != SourceStatus.STREAMING:
            return f"source {self.source.status} at the end of the stimulus"
        return ""

    def _loss_inside(self, onset_index: int | None, offset_index: int | None) -> str:
        """A reason if the trial's EEG is incomplete: an edge that never arrived, a lost
        connection, or a gap of a second or more inside it ("" otherwise; shorter device
        drops stay gaps that training splits at)."""
        return trial_loss(onset_index, offset_index,
                          [(g.after_index, g.n_missing, g.reason) for g in self.source.buffer.gaps],
                          float(self.source.sfreq_hz))

    def _ask_label(self, position: int, stim: Stimulus) -> LabelResponse:
        if self.label_mode == "auto":
            valence, arousal = AUTO_SAM.get(stim.emotion, (None, None)) if self.protocol.sam else (None, None)
            return LabelResponse(stim.emotion, valence, arousal)
        while True:
            try:
                while True:  # drop answers given before this prompt
                    self._labels.get_nowait()
            except queue.Empty:
                pass
            self._emit("label_prompt", trial=position, stimulus_id=stim.id, labels=self.protocol.labels)
            response = self._labels.get()
            if response is None:
                with self._cond:
                    if self._aborted:
                        raise _Interrupted
                continue
            return response

    # -- waiting and control --------------------------------------------------------------
    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` if paused meanwhile (raises on abort or failure)."""
        deadline = local_clock() + seconds
        with self._cond:
            while True:
                if self._aborted:
                    raise _Interrupted
                if self.paused:
                    return False
                remaining = deadline - local_clock()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)

    def _hold(self) -> None:
        """Block while paused, re-checking faults; resume by itself when every fault has
        cleared and no operator pause holds; raise :class:`_Interrupted` on abort and
        fail the session when an outage lasts longer than ``max_outage_s``."""
        with self._cond:
            if not self.paused:
                if self._aborted:
                    raise _Interrupted
                return
        reasons = self._pause_reasons()
        self._set_state(RunnerState.PAUSED)
        self._marker(f"pause:{reasons}", local_clock())
        self._emit("paused", message=reasons)
        self._set_neutral()
        while True:
            with self._cond:
                if self._aborted:
                    raise _Interrupted
                if not self.paused:
                    break
                self._cond.wait(PROBE_INTERVAL_S)
                if self._aborted:
                    raise _Interrupted
            self._probe()
            self._check_outage()
        self._flush_pending()
        self._marker("resume", local_clock())
        self._emit("resumed")

    def _pause_reasons(self) -> str:
        with self._cond:
            reasons = list(self._faults.values())
            if self._operator_paused:
                reasons.insert(0, "operator")
        return "; ".join(reasons) or "operator"

    def _set_state(self, state: RunnerState) -> None:
        if state == self._state:
            return
        self._state = state
        self._emit("state")

    def _emit(self, kind: str, **kwargs: Any) -> None:
        done = len(self.trials)
        event = RunnerEvent(kind=kind, state=self._state, t=local_clock(), n_trials=len(self.order),
                            progress=done / max(1, len(self.order)), **kwargs)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                log.exception("runner listener failed on %s", kind)

    # -- simulated participant ------------------------------------------------------------
    def _set_sim_state(self, emotion: str) -> None:
        set_state = getattr(self.source, "set_state", None)
        if set_state is None:
            return
        try:
            set_state(emotion)
        except ValueError:
            set_state("neutral")  # a label the simulator has no model for

    def _set_neutral(self) -> None:
        self._set_sim_state("neutral")

    # -- indices, markers, store ----------------------------------------------------------
    def _index_at(self, t: float, timeout_s: float = 10.0, wait: bool = True) -> int | None:
        """Index of the first source sample at or after ``t`` (EEG clock); waits for a
        source that lags behind (a busy machine, a fast simulated source); ``None`` if no
        such sample arrives within ``timeout_s``, or at once when ``wait`` is False or the
        source stops streaming (a lost source may never deliver it)."""
        buf = self.source.buffer
        deadline = local_clock() + (timeout_s if wait else 0.0)
        while True:
            speed = float(getattr(self.source, "speed", 1.0))
            chunk = buf.latest(seconds=max(0.0, local_clock() - t) * speed + 4.0)
            ts = chunk.timestamps
            if len(ts) and ts[-1] >= t:
                if ts[0] > t:
                    return chunk.first_index  # older than the buffer: the earliest we have
                return chunk.first_index + int(np.searchsorted(ts, t, side="left"))
            remaining = deadline - local_clock()
            if remaining <= 0 or self.source.status != SourceStatus.STREAMING:
                return None
            buf.wait_for(chunk.next_index, min(0.25, remaining))

    def _marker(self, text: str, t: float, sample_index: int | None = None) -> None:
        """Publish a marker on LSL and store it."""
        if self.markers is not None:
            try:
                self.markers.push(text, t)
            except RuntimeError as exc:
                log.warning("marker %s not published: %s", text, exc)
        self._store_marker(text, t, sample_index)

    def _store_marker(self, text: str, t: float, sample_index: int | None) -> None:
        if self.session_id is None:
            return
        sid = self.session_id
        self._store(f"marker {text}", lambda: self.store.add_marker(sid, t, text, sample_index))

    def _add_trial(self, record: TrialRecord) -> None:
        record.trial_id = self.store.add_trial(
            self.session_id, record.stimulus.id, record.stimulus.emotion, record.onset_t, record.offset_t,
            record.onset_index, record.offset_index, status=record.status, contact=record.contact,
        )

    def _set_label(self, record: TrialRecord) -> None:
        if record.trial_id is None:
            raise StoreError(f"trial {record.stimulus.id!r} is not stored yet")
        self.store.set_trial_label(record.trial_id, str(record.label), record.valence, record.arousal)

    def _store(self, what: str, write: Callable[[], Any]) -> None:
        """Run a store write; if it fails, keep it for later (a store fault). Thread-safe:
        faults store their markers from the thread that saw them."""
        with self._pending_lock:
            if self._pending:
                self._pending.append((what, write))
                self._flush_pending()
                return
            try:
                write()
            except StoreError as exc:
                self._pending.append((what, write))
                self._fault("store", f"store error: {exc}")

    def _flush_pending(self) -> bool:
        """Retry the writes that failed, in order; ``True`` when none is left."""
        with self._pending_lock:
            while self._pending:
                _what, write = self._pending[0]
                try:
                    write()
                except StoreError as exc:
                    self._fault("store", f"store error: {exc}")
                    return False
                self._pending.pop(0)
            return True

    def _on_store_error(self, exc: StoreError) -> None:
        if self._active:
            self._fault("store", f"store error: {exc}")

    def _on_store_recovered(self) -> None:
        if self._active and not self._pending:
            self._clear_fault("store")

    def _on_quality_error(self, message: str) -> None:
        """The contact-quality reader failed (it keeps searching): tell the listeners once
        per distinct message; trials meanwhile store no contact quality."""
        if message == self._quality_error:
            return
        self._quality_error = message
        self._messages.append(f"contact quality: {message}")
        self._emit("quality_error", message=f"contact quality: {message}")

    def _on_source_status(self, status: SourceStatus) -> None:
        if not self._active:
            return
        if status == SourceStatus.LOST:
            self._fault("source", f"source lost: {self.source.last_error or 'no data'}")
        elif status == SourceStatus.STREAMING:
            self._clear_fault("source")
        elif status == SourceStatus.STOPPED:
            why = self.source.last_error or "disconnected or ended"
            if self.source.kind == "replay":  # a recording at its end never streams again
                self._fail(f"source stopped: {why}")
            else:  # disconnected: a fault like a lost source, until it is connected again
                self._fault("source", f"source stopped: {why}")


def trial_loss(onset_index: int | None, offset_index: int | None, gaps: Iterable[tuple[int, int, str]],
               sfreq_hz: float) -> str:
    """Why a trial's EEG is too incomplete to keep it as complete ("" if it is not): an
    edge without EEG, a lost connection, or a gap of a second or more touching it.

    ``gaps`` are ``(after_index, n_missing, reason)``. The one rule for live sessions
    and imported recordings; shorter drops stay gaps that training splits at."""
    if onset_index is None or offset_index is None:
        return "the EEG of the trial did not arrive"
    for after_index, n_missing, reason in gaps:
        if onset_index - 1 <= after_index < offset_index and (reason == "device lost" or n_missing >= sfreq_hz):
            return f"{n_missing} samples missing inside the trial ({reason})"
    return ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
