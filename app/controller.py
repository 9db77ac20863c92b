"""The GUI's handle on the current signal source.

:class:`SourceController` builds and connects sources in a worker (never on the GUI
thread), disconnects the previous one, and tells the views through ``source_changed``.
The views read from ``controller.source.buffer`` on their own timers.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from acquisition.sources.base import BaseSource, SourceStatus
from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)
from app.notifications import NotificationCenter
from app.workers import Task, WorkerPool

log = logging.getLogger(__name__)


class SourceController(QObject):
    """Owns the current source; connecting and disconnecting run in the worker pool."""

    source_changed = Signal(object)  # BaseSource | None
    busy_changed = Signal(bool)
    connect_failed = Signal(str)
    status_changed = Signal(object, str)  # (source, status) from the reader thread

    def __init__(self, pool: WorkerPool, notes: NotificationCenter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.notes = notes
        self.source: BaseSource | None = None
        self.spec: str = ""
        self._busy = False
        self._last_status = ""
        self.status_changed.connect(self._on_status)
        #: ``() -> (source, spec)`` of a running session, ``(None, "")`` when none runs (the
        #: main window wires it to the app state)
        self.session_source: Any = lambda: (None, "")

    @property
    def busy(self) -> bool:
        return self._busy

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.busy_changed.emit(busy)

    # -- connect / disconnect -------------------------------------------------------------
    def connect_spec(self, spec: str, timeout_s: float = 10.0, **kwargs: Any) -> Task | None:
        """Build the source ``spec`` names and connect it in a worker.

        While a session records, its own source is connected again instead (the session
        resumes on it, the time in between stored as a gap), and another spec is refused.
        """
        spec = canonical_spec(spec)  # one spelling reaches the store: "simulated" is "simulated:0"
        held, held_spec = self.session_source()
        if held is not None:
            if spec != held_spec:
                self.notes.warning(f"a session is recording from {held_spec}: end it before connecting "
                                   f"{spec} (connecting {held_spec} again resumes the session)")
                return None
            return self._connect(spec, lambda _task: held, timeout_s)

        def build(task: Task) -> BaseSource:
            from acquisition.sources.spec import open_source, parse_source_spec

            source = open_source(spec, **kwargs)
            parsed = parse_source_spec(spec)
            if parsed.kind == "replay" and "#" not in parsed.target and hasattr(source, "recording"):
                # parsing a large CSV/EDF holds the GIL in C for a while: do it in a child process
                from app.procs import call_in_process

                source.recording = call_in_process("acquisition.sources.replay:read_recording", parsed.target,
                                                   dict(parsed.options).get("stream"),
                                                   cancelled=lambda: task.cancelled)
            return source

        return self._connect(spec, build, timeout_s)

    def connect_source(self, source: BaseSource, spec: str = "", timeout_s: float = 10.0) -> Task | None:
        """Connect an already built source in a worker and make it current."""
        return self._connect(spec or source.kind, lambda _task: source, timeout_s)

    def _connect(self, spec: str, build: Any, timeout_s: float) -> Task | None:
        if self._busy:
            self.notes.warning("a source is being connected or disconnected; wait for it")
            return None
        old = self.source
        self.source = None
        if old is not None:
            self.source_changed.emit(None)
        self._set_busy(True)

        def job(task: Task) -> BaseSource:
            if old is not None:
                old.disconnect()
            source = build(task)
            try:
                source.connect(timeout_s=timeout_s)
            except BaseException:
                source.disconnect()
                raise
            if task.cancelled:
                source.disconnect()
                task.check()
            return source

        def done(source: BaseSource) -> None:
            self.source = source
            self.spec = spec
            source.add_status_listener(lambda status, src=source: self.status_changed.emit(src, str(status)))
            self.source_changed.emit(source)
            name = source.info.name if source.info else spec
            self.notes.notify(f"connected: {name}", "success")

        return self.pool.submit(
            f"connect {spec}", job, on_result=done, on_error=self.connect_failed.emit,
            on_done=lambda: self._set_busy(False),
        )

    def disconnect(self) -> Task | None:
        """Disconnect the current source in a worker (a running session on it pauses until
        it is connected again)."""
        old = self.source
        if old is None:
            return None
        held, held_spec = self.session_source()
        if old is held:
            self.notes.warning(f"the session pauses until {held_spec} is connected again (or it is ended)")
        self.source = None
        self.source_changed.emit(None)
        self._set_busy(True)

        def job(_task: Task) -> None:
            old.disconnect()

        return self.pool.submit(f"disconnect {self.spec}", job, on_done=lambda: self._set_busy(False))

    def shutdown(self) -> None:
        """Disconnect synchronously (window closing: the pool is being drained anyway)."""
        old, self.source = self.source, None
        if old is not None:
            old.disconnect(timeout_s=3.0)

    def _on_status(self, source: BaseSource, status: str) -> None:
        if source is not self.source or status == self._last_status:
            return
        self._last_status = status
        if status == SourceStatus.LOST:
            src = self.source
            reason = f" ({src.last_error})" if src is not None and src.last_error else ""
            self.notes.warning(f"signal lost from {self.spec}{reason}; reconnecting")
        elif status == SourceStatus.STOPPED and self.source is not None:
            if self.source.last_error:
                self.notes.error(f"source {self.spec} stopped: {self.source.last_error}")
            else:
                self.notes.notify(f"source {self.spec} stopped", "info")


def canonical_spec(spec: str) -> str:
    """One spelling per source: ``simulated`` → ``simulated:0``; other specs unchanged
    (a spec that does not parse is left for :func:`open_source` to refuse)."""
    text = spec.strip()
    if text == "simulated" or text.startswith("simulated?"):
        return "simulated:0" + text[len("simulated"):]
    return text
