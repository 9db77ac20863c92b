"""The app's one state object: what the views share, as Qt signals.

Views never know the main window or each other (napari's ``components`` vs ``_qt``
split): each takes the :class:`AppState` (and the source controller when it connects
sources) in its constructor, subscribes to the signals it shows, and changes shared state
only through the methods here. :class:`~app.main_window.MainWindow` builds the state and
the views and wires them, nothing more.

Every signal is emitted on the GUI thread: engine threads (the session runner, the source
reader) reach the state through the views' queued signals, never directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acquisition.settings import Settings
from acquisition.sources.base import BaseSource
from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)
from app.notifications import NotificationCenter
from app.workers import WorkerPool


@dataclass(frozen=True)
class SessionContext:
    """What the running session is doing, as the live views show it.

    ``playing`` is the stimulus title (``"(silence)"`` between pieces), ``intended`` its
    intended emotion and ``reported`` the participant's last answer (kept until the next
    one), ``reported_for`` the title it was given for; ``None`` means nothing to show.
    The context belongs to one running session: it is cleared when the session ends and
    when a replay starts (:meth:`AppState.clear_session_context`).
    """

    session_id: int | None = None
    running: bool = False
    playing: str | None = None
    intended: str | None = None
    reported: str | None = None
    reported_for: str | None = None


def is_simulated(source: BaseSource | None) -> bool:
    """True if ``source`` gives simulated signals: the simulated headset, or a source whose
    device says so (EmotivPRO simulated by Duygu, a replay of a simulated session)."""
    if source is None:
        return False
    if source.kind == "simulated":
        return True
    info = source.info
    if info is None:
        return False
    text = " ".join([str(info.name), *map(str, info.notes)]).lower()
    return "simulat" in text


class AppState(QObject):
    """Shared state of the desktop app.

    Parameters
    ----------
    settings : Settings
        Duygu settings.
    store_path : Path
        The session store the views read and write.
    protocol_path : Path
        The protocol chosen for the next session.
    pool : WorkerPool
        Where views run slow work (never on the GUI thread).
    notes : NotificationCenter
        Where views tell the operator what happened.
    """

    #: the current source changed (``BaseSource`` or ``None``)
    source_changed = Signal(object)
    #: a runner event of the running session (:class:`~acquisition.session.runner.RunnerEvent`)
    session_event = Signal(object)
    #: the running session ended (its ``SessionResult``, or the error text)
    session_finished = Signal(object)
    #: :attr:`session_context` changed
    session_context_changed = Signal(object)
    #: sessions were added to (or changed in) the store
    sessions_changed = Signal()
    #: a model bundle was chosen for live prediction: ``(bundle, name)``
    bundle_chosen = Signal(object, str)
    #: :attr:`protocol_path` changed
    protocol_changed = Signal(object)
    #: the engine is loaded: the registry's classifier names
    classifiers_ready = Signal(list)
    #: :attr:`time_scale` changed (the simulated headset follows it)
    time_scale_changed = Signal(float)

    def __init__(self, settings: Settings, store_path: Path, protocol_path: Path, pool: WorkerPool,
                 notes: NotificationCenter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.store_path = Path(store_path)
        self.pool = pool
        self.notes = notes
        self._protocol_path = Path(protocol_path)
        self.source: BaseSource | None = None
        self.source_spec = ""
        self.marker_outlet: Any = None  # the app's LSL marker outlet (made at launch)
        self.session_context = SessionContext()
        self.last_session_event: Any = None  # the running (or last) session's newest runner event
        #: the source a running session records from, and its spec (None when no session runs):
        #: connecting that spec again brings the same source object back to the session
        self.session_source: BaseSource | None = None
        self.session_spec = ""
        self.bundle: Any = None  # the model bundle chosen for live prediction, and its name
        self.bundle_name = ""
        self.classifier_names: list[str] | None = None
        self.time_scale = 1.0

    # -- source ------------------------------------------------------------------------
    def set_source(self, source: BaseSource | None, spec: str = "") -> None:
        """The controller connected ``source`` (or disconnected: ``None``)."""
        self.source = source
        self.source_spec = spec if source is not None else ""
        self.source_changed.emit(source)

    def set_time_scale(self, scale: float, *, resync: bool = False) -> None:
        """The session's time scale; with the simulated headset it is also its speed.
        ``resync`` tells the listeners even when it did not change (the headset runs at
        another speed and must follow)."""
        scale = float(scale)
        if scale != self.time_scale or resync:
            self.time_scale = scale
            self.time_scale_changed.emit(scale)

    # -- protocol ----------------------------------------------------------------------
    @property
    def protocol_path(self) -> Path:
        return self._protocol_path

    def set_protocol_path(self, path: Path | str) -> None:
        path = Path(path)
        if path != self._protocol_path:
            self._protocol_path = path
            self.protocol_changed.emit(path)

    # -- session -----------------------------------------------------------------------
    def publish_session_event(self, event: Any, context: SessionContext | None = None) -> None:
        """The session view received ``event`` from the runner; ``context`` is the live
        context after it (``None``: unchanged)."""
        if context is not None and context != self.session_context:
            self.session_context = context
            self.session_context_changed.emit(context)
        self.last_session_event = event
        self.session_event.emit(event)

    def set_session_source(self, source: BaseSource | None, spec: str = "") -> None:
        """A session started recording from ``source`` (``None``: it ended)."""
        self.session_source = source
        self.session_spec = spec if source is not None else ""

    def update_session_context(self, **changes: Any) -> None:
        """Change fields of :attr:`session_context` (see :class:`SessionContext`)."""
        context = replace(self.session_context, **changes)
        if context != self.session_context:
            self.session_context = context
            self.session_context_changed.emit(context)

    def clear_session_context(self) -> None:
        """No session's context any more (it ended, or a replay starts)."""
        self.update_session_context(**{f: getattr(SessionContext(), f) for f in SessionContext.__dataclass_fields__})

    def publish_session_finished(self, result: Any) -> None:
        """The running session ended with ``result`` (or an error text)."""
        self.session_finished.emit(result)
        self.sessions_changed.emit()

    # -- models ------------------------------------------------------------------------
    def choose_bundle(self, bundle: Any, name: str) -> None:
        """Use ``bundle`` for live prediction."""
        self.bundle, self.bundle_name = bundle, str(name)
        self.bundle_chosen.emit(bundle, name)

    def set_classifier_names(self, names: list[str]) -> None:
        self.classifier_names = list(names)
        self.classifiers_ready.emit(list(names))
