"""Recorders: copy a source's ring buffer into the session store or a CSV file.

:class:`StoreRecorder` runs its own thread: every ``commit_interval_s`` (<= 0.5 s) it
takes ``source.buffer.since(cursor)`` and commits it with
:meth:`~acquisition.store.sqlite.SessionStore.append_eeg`. If a write fails (disk full,
read-only, locked) the cursor stays where it was, the error is kept in ``last_error``
and passed to the ``on_error`` callbacks, and the recorder retries with back-off: what
was committed stays committed, and what was not yet written waits in the ring buffer
(600 s by default) until the write succeeds or the session is stopped. Any other error
(a bug, a broken disk) is handled the same way and never ends the recorder thread
silently; ``on_recovered`` callbacks hear when writing works again.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np

from acquisition.channels import EPOC_CHANNELS
from acquisition.errors import StoreError
from acquisition.ringbuffer import RingBuffer
from acquisition.settings import is_session_store
from acquisition.store.sqlite import SessionStore

log = logging.getLogger(__name__)

MAX_COMMIT_INTERVAL_S = 0.5


class Buffered(Protocol):
    """What a recorder reads: a ring buffer with its gaps (every source has one)."""

    buffer: RingBuffer


class StoreRecorder:
    """Copy a source's samples into a session of the store, committing often.

    Parameters
    ----------
    source : Buffered
        The (connected or soon connected) source; only its ``buffer`` is read.
    store : SessionStore
        An open, writable store.
    session_id : int
        The session the samples belong to.
    start_index : int, optional
        First source sample index to record; default: the buffer's total when
        :meth:`start` is called (the samples from now on).
    commit_interval_s : float
        Time between commits, at most 0.5 s.
    on_error : callable, optional
        ``on_error(exc)`` is called from the recorder thread when writing starts failing.
    max_chunk_samples : int
        Largest chunk written in one row (a backlog is split).
    stop_index : int, optional
        Samples from this source index on are not recorded (for fixed-length recordings).
    """

    def __init__(
        self,
        source: Buffered,
        store: SessionStore,
        session_id: int,
        start_index: int | None = None,
        commit_interval_s: float = 0.25,
        on_error: Callable[[StoreError], None] | None = None,
        max_chunk_samples: int = 1280,
        stop_index: int | None = None,
    ) -> None:
        if not 0 < commit_interval_s <= MAX_COMMIT_INTERVAL_S:
            raise ValueError(f"commit_interval_s must be in (0, {MAX_COMMIT_INTERVAL_S}] s, got {commit_interval_s}")
        self.source = source
        self.store = store
        self.session_id = session_id
        self.commit_interval_s = commit_interval_s
        self.max_chunk_samples = max_chunk_samples
        self.cursor = start_index
        self.stop_index = stop_index
        self.samples_written = 0
        self.chunks_written = 0
        self.overruns = 0
        self.missed_samples = 0
        self.errors = 0
        self.last_error: str | None = None
        self.paused = False
        self._callbacks: list[Callable[[StoreError], None]] = [on_error] if on_error else []
        self._recovered: list[Callable[[], None]] = []
        self._gaps_seen = len(source.buffer.gaps)
        self._events_seen = len(source.buffer.events_since(0))
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add_error_listener(self, callback: Callable[[StoreError], None]) -> None:
        """Call ``callback(exc)`` when writing starts failing."""
        self._callbacks.append(callback)

    def add_recovery_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when writing works again after a failure."""
        self._recovered.append(callback)

    def start(self) -> StoreRecorder:
        """Start the recorder thread."""
        if self._thread is not None:
            return self
        if self.cursor is None:
            self.cursor = self.source.buffer.total
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="duygu-store-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> dict[str, object]:
        """Stop the thread, write what is left, and return :meth:`stats`.

        Does not raise: a failed final write is in ``last_error``.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
        self.flush()
        return self.stats()

    def __enter__(self) -> StoreRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, object]:
        """Counters as plain data."""
        return {
            "samples_written": self.samples_written,
            "chunks_written": self.chunks_written,
            "overruns": self.overruns,
            "missed_samples": self.missed_samples,
            "errors": self.errors,
            "paused": self.paused,
            "last_error": self.last_error,
        }

    def flush(self) -> bool:
        """Write everything the buffer holds after the cursor; ``True`` if it succeeded."""
        with self._flush_lock:
            if self.cursor is None:
                self.cursor = self.source.buffer.total
            try:
                self._record_gaps()
                self._record_events()
                while True:
                    limit = self.max_chunk_samples
                    if self.stop_index is not None:
                        limit = max(0, min(limit, self.stop_index - self.cursor))
                    chunk = self.source.buffer.since(self.cursor, max_samples=limit)
                    if chunk.missed:
                        self.overruns += 1
                        self.missed_samples += chunk.missed
                        log.warning("store recorder overrun: %d samples were overwritten", chunk.missed)
                    if len(chunk) == 0:
                        self.cursor = chunk.first_index
                        break
                    self.store.append_eeg(self.session_id, chunk.data, chunk.timestamps, chunk.first_index)
                    self.cursor = chunk.next_index
                    self.samples_written += len(chunk)
                    self.chunks_written += 1
            except StoreError as exc:
                self._failed(exc)
                return False
            except Exception as exc:  # not a store condition we know: keep retrying, say so
                log.exception("store recorder: unexpected error")
                self._failed(StoreError(f"writing EEG failed: {type(exc).__name__}: {exc}"))
                return False
        if self.paused:
            log.info("store recorder: writing works again")
            self.paused = False
            for callback in list(self._recovered):
                try:
                    callback()
                except Exception:
                    log.exception("store recorder recovery listener failed")
        return True

    def _record_gaps(self) -> None:
        for gap in self.source.buffer.gaps_since(self._gaps_seen):
            self.store.add_gap(self.session_id, gap.after_index, gap.start_time, gap.end_time, gap.n_missing,
                               gap.reason)
            self._gaps_seen += 1

    def _record_events(self) -> None:
        """Device events (hardware triggers) as markers at the sample they mark; one whose
        sample has not arrived yet waits for the next flush."""
        buffer = self.source.buffer
        for event in buffer.events_since(self._events_seen):
            index = buffer.index_at(event.t)
            if index is None:
                break
            if self.stop_index is None or index < self.stop_index:
                self.store.add_marker(self.session_id, event.t, event.text, index)
            self._events_seen += 1

    def _failed(self, exc: StoreError) -> None:
        self.errors += 1
        self.last_error = str(exc)
        if self.paused:
            return
        self.paused = True
        log.error("store recorder paused: %s", exc)
        for callback in list(self._callbacks):
            try:
                callback(exc)
            except Exception:
                log.exception("store recorder error listener failed")

    def _run(self) -> None:
        backoff_s = self.commit_interval_s
        while not self._stop.wait(backoff_s):
            ok = self.flush()
            backoff_s = self.commit_interval_s if ok else min(2.0, backoff_s * 2)


#: One CSV row: the time to the microsecond, each channel to 9 significant digits (µV).
_CSV_ROW = ",".join(["%.6f"] + ["%.9g"] * len(EPOC_CHANNELS)) + "\n"


def csv_rows(timestamps: np.ndarray, data: np.ndarray) -> str:
    """The CSV text of samples: ``time,AF3,...,AF4`` rows, exactly as
    ``numpy.savetxt(f, column_stack([timestamps, data]), delimiter=",", fmt=["%.6f"] +
    ["%.9g"] * 14)`` writes them, but formatted in one operation instead of one per row."""
    n = len(timestamps)
    if n == 0:
        return ""
    values = np.empty((n, 1 + data.shape[1]), dtype=np.float64)
    values[:, 0] = timestamps
    values[:, 1:] = data
    return (_CSV_ROW * n) % tuple(values.ravel().tolist())


def partial_csv(path: str | Path) -> Path:
    """Where a CSV recording to ``path`` keeps its rows while it runs: ``FILE.partial``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _partial_error(partial: Path) -> StoreError:
    return StoreError(f"{partial} holds the rows of an interrupted recording; rename it to keep them "
                      "(or delete it), then record again (--force does not replace it)")


def refuse_partial(path: str | Path) -> None:
    """Raise :class:`StoreError` (one line) if an interrupted recording to ``path`` left
    its ``FILE.partial``: a new recording would replace those rows."""
    partial = partial_csv(path)
    if partial.exists() or partial.is_symlink():
        raise _partial_error(partial)


class CsvRecorder:
    """Write a source's samples to a CSV file: ``time,AF3,...,AF4`` in µV.

    Used by ``duygu record --out FILE.csv``. The rows go to ``FILE.csv.partial`` as they
    arrive (flushed at every :meth:`flush`); :meth:`close` renames it to ``FILE.csv``. A
    process killed before that leaves the ``.partial`` file: what was recorded is kept,
    and it is plainly not a finished recording. A ``.partial`` file that exists already
    (the rows of an interrupted recording) is never replaced: the recorder refuses to
    start (:class:`~acquisition.errors.StoreError`). Nor is ``FILE.csv`` renamed over a
    session store.
    """

    def __init__(self, source: Buffered, path: str | Path, start_index: int | None = None) -> None:
        self.source = source
        self.path = Path(path)
        self.partial_path = partial_csv(self.path)
        self.cursor = start_index
        self.samples_written = 0
        self.missed_samples = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = self.partial_path.open("x", newline="", encoding="utf-8")
        except FileExistsError:
            raise _partial_error(self.partial_path) from None
        except OSError as exc:
            raise StoreError(f"cannot write CSV file {self.path}: {exc.strerror}") from exc
        self._writer = csv.writer(self._file)
        # a device with other electrodes keeps its names: "AF3 (board Fz)"
        mapping: dict[str, str] = getattr(getattr(source, "info", None), "channel_map", None) or {}
        self._writer.writerow(["time", *(f"{ch} (board {mapping[ch]})" if ch in mapping else ch
                                         for ch in EPOC_CHANNELS)])

    def flush(self, stop_index: int | None = None) -> int:
        """Append the samples received since the last call (before ``stop_index``); return how many."""
        if self.cursor is None:
            self.cursor = self.source.buffer.total
        limit = None if stop_index is None else max(0, stop_index - self.cursor)
        chunk = self.source.buffer.since(self.cursor, max_samples=limit)
        self.missed_samples += chunk.missed
        self.cursor = chunk.next_index
        if len(chunk):
            try:
                self._file.write(csv_rows(chunk.timestamps, chunk.data))
                self._file.flush()
            except OSError as exc:
                raise StoreError(f"cannot write CSV file {self.path}: {exc.strerror}") from exc
        self.samples_written += len(chunk)
        return len(chunk)

    def close(self) -> None:
        """Close the file and give it its final name."""
        if self._file.closed:
            return
        self._file.close()
        if is_session_store(self.path):
            raise StoreError(f"{self.path} is a session store; Duygu never overwrites one: the rows are in "
                             f"{self.partial_path}")
        try:
            os.replace(self.partial_path, self.path)
        except OSError as exc:
            raise StoreError(f"cannot finish CSV file {self.path} (rows are in {self.partial_path}): "
                             f"{exc.strerror}") from exc
