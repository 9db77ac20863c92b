"""Background work for the GUI: nothing slow runs on the GUI thread.

:func:`WorkerPool.submit` runs ``fn(task)`` on a :class:`QThreadPool` of the window's own;
the :class:`Task` handle it passes lets the function report progress
(``task.progress(fraction, text)``) and check for cancellation
(``task.cancelled`` / ``task.check()``, which raises :class:`Cancelled`). Results,
errors and progress come back as Qt signals, delivered on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from acquisition.errors import DuyguError
from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task when the user cancelled it."""


class _TaskSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()  # after finished, failed or cancelled


class Task:
    """A handle on one background job (returned by :meth:`WorkerPool.submit`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals = _TaskSignals()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.result: Any = None
        self.error: str | None = None

    # -- used by the job ------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user cancelled the task."""
        if self._cancel.is_set():
            raise Cancelled(self.name)

    def progress(self, fraction: float, text: str = "") -> None:
        """Report progress (0..1); raises :class:`Cancelled` if cancelled meanwhile."""
        self.signals.progress.emit(float(fraction), str(text))
        self.check()

    # -- used by the GUI ------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)


class _Runnable(QRunnable):
    def __init__(self, task: Task, fn: Callable[[Task], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._task = task
        self._fn = fn

    def run(self) -> None:
        task = self._task
        try:
            task.result = self._fn(task)
        except Cancelled:
            task._done.set()
            task.signals.cancelled.emit()
        except DuyguError as exc:
            task.error = str(exc)
            task._done.set()
            task.signals.failed.emit(f"{task.name}: {exc}")
        except Exception as exc:  # a bug or a library error: keep the trace in the log
            log.error("%s failed:\n%s", task.name, traceback.format_exc())
            task.error = f"{type(exc).__name__}: {exc}"
            task._done.set()
            task.signals.failed.emit(f"{task.name} failed: {type(exc).__name__}: {exc}")
        else:
            task._done.set()
            task.signals.finished.emit(task.result)
        task.signals.done.emit()


class WorkerPool(QObject):
    """A thread pool of one window; :meth:`shutdown` cancels and waits for every task.

    Parameters
    ----------
    notify : callable, optional
        ``notify(text, level)``; failures of tasks are sent there (non-blocking).
    max_threads : int
        Threads in the pool.
    """

    def __init__(self, notify: Callable[[str, str], None] | None = None, max_threads: int = 4,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._notify = notify
        self._tasks: list[Task] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def submit(self, name: str, fn: Callable[[Task], Any], *,
               on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None,
               on_progress: Callable[[float, str], None] | None = None,
               on_done: Callable[[], None] | None = None) -> Task:
        """Run ``fn(task)`` in the pool; callbacks run on the GUI thread."""
        task = Task(name)
        sig = task.signals
        closed = self._closed

        def guard(callback: Callable[..., None]) -> Callable[..., None]:
            # results that arrive after the window closed would touch deleted widgets
            return lambda *args: None if closed.is_set() else callback(*args)

        if on_result is not None:
            sig.finished.connect(guard(on_result))
        if on_progress is not None:
            sig.progress.connect(guard(on_progress))
        if on_error is not None:
            sig.failed.connect(guard(on_error))
        if self._notify is not None:
            notify = self._notify
            sig.failed.connect(guard(lambda text: notify(text, "error")))
        if on_done is not None:
            sig.done.connect(guard(on_done))
        sig.done.connect(lambda: self._forget(task))
        with self._lock:
            self._tasks.append(task)
        self._pool.start(_Runnable(task, fn))
        return task

    def _forget(self, task: Task) -> None:
        with self._lock:
            if task in self._tasks:
                self._tasks.remove(task)

    @property
    def active(self) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks if not t.is_done]

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every task and wait for the threads; True if all ended in time.

        Callbacks of tasks that finish afterwards are dropped (their widgets are gone).
        """
        for task in self.active:
            task.cancel()
        done = bool(self._pool.waitForDone(timeout_ms))
        self._closed.set()
        return done
