"""The crash-safe session store: one SQLite file (WAL) per lab.

Tables: ``participants`` (pseudonymous ids only), ``sessions``, ``trials`` (complete or
interrupted), ``markers``, ``gaps`` (where samples are missing), ``eeg_chunks`` (float32
samples and float64 timestamps as blobs) and ``schema_version``. Schema version 2 (a
version-1 store is migrated in place when it is first opened for writing).
Every write is its own short transaction, so whatever was committed survives a crash of
the writing process; :class:`~acquisition.store.recorder.StoreRecorder` commits the EEG at least
every 0.5 s. A session left ``running`` by a process that no longer exists becomes
``interrupted`` the next time the store is opened.

Durability: WAL journal with ``synchronous=FULL``. A commit is in the operating system's
file cache before ``COMMIT`` returns, which is what survives ``kill -9``; FULL also
fsyncs the WAL at each commit, so a power loss costs at most the last uncommitted
interval too, on disks that honour flushes (see docs/STORE.md). The recorder commits
about four times a second, so the fsyncs cost little.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import LabelError, StoreError
from acquisition.settings import atomic_output, pid_alive, store_files

SCHEMA_VERSION = 2
#: session statuses: ``failed`` = a fault (source, store, audio) outlasted its limit
STATUSES = ("running", "completed", "aborted", "interrupted", "failed")
#: trial statuses: an ``interrupted`` trial (stopped by a pause or a fault, or holding a
#: long gap) is kept with its EEG but never labelled or used for training
TRIAL_STATUSES = ("complete", "interrupted")
#: default rule for pseudonymous participant ids: letters, then digits (P01, S12)
DEFAULT_PARTICIPANT_PATTERN = r"[A-Za-z]+[0-9]+"
MAX_PARTICIPANT_ID = 32
SEXES = {"f": "F", "female": "F", "m": "M", "male": "M", "o": "O", "other": "O"}
#: Self-Assessment Manikin scale of valence and arousal ratings
SAM_MIN, SAM_MAX = 1, 9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    age INTEGER,
    sex TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant TEXT NOT NULL REFERENCES participants(id),
    protocol TEXT NOT NULL,
    protocol_name TEXT NOT NULL,
    source TEXT NOT NULL,
    device TEXT NOT NULL,
    sfreq_hz REAL NOT NULL,
    channels TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT,
    updated TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'aborted', 'interrupted', 'failed')),
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    owner_marker TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    stimulus_id TEXT NOT NULL,
    intended TEXT,
    onset_t REAL NOT NULL,
    offset_t REAL NOT NULL,
    onset_index INTEGER,
    offset_index INTEGER,
    label TEXT,
    valence INTEGER,
    arousal INTEGER,
    status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'interrupted')),
    contact TEXT
);
CREATE INDEX IF NOT EXISTS trials_session ON trials(session_id);
CREATE TABLE IF NOT EXISTS markers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    t REAL NOT NULL,
    sample_index INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS markers_session ON markers(session_id);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    after_index INTEGER NOT NULL,
    start_t REAL NOT NULL,
    end_t REAL NOT NULL,
    n_missing INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gaps_session ON gaps(session_id);
CREATE TABLE IF NOT EXISTS eeg_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    first_index INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    first_t REAL NOT NULL,
    last_t REAL NOT NULL,
    data BLOB NOT NULL,
    timestamps BLOB NOT NULL,
    UNIQUE (session_id, first_index)
);
"""

# SQLite primary result codes used to word errors
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


@dataclass(frozen=True)
class LabelledTrial:
    """The EEG of one labelled trial, ready for a dataset.

    Attributes
    ----------
    data : ndarray, shape (n_samples, 14)
        Raw samples in µV, EPOC order, between the trial's onset and offset (samples
        missing from the recording are simply absent; see ``n_missing``).
    label : str
        The label the participant reported.
    trial_id : str
        Unique over the store: ``"<session id>:<trial id>"``.
    subject : str
        Pseudonymous participant id.
    sfreq_hz : float
        Sampling rate of ``data``.
    pieces : tuple of (int, int)
        Row ranges of ``data`` between gaps (samples missing from the recording, a lost
        connection, a time jump); see :meth:`contiguous_pieces`.
    """

    data: NDArray[np.float64]
    label: str
    trial_id: str
    subject: str
    sfreq_hz: float
    session_id: int = 0
    stimulus_id: str = ""
    intended: str | None = None
    n_missing: int = 0
    pieces: tuple[tuple[int, int], ...] = ()
    bad_contact: tuple[str, ...] = ()  # electrodes with bad contact during the trial

    def contiguous_pieces(self) -> tuple[tuple[int, int], ...]:
        """Row ranges ``(start, stop)`` of ``data`` with no sample missing inside; windows
        must never cross from one to the next (the whole trial when none are recorded)."""
        return self.pieces or ((0, len(self.data)),)


@dataclass(frozen=True)
class SessionInfo:
    """One row of the sessions table, with counts."""

    id: int
    participant: str
    protocol_name: str
    protocol: dict[str, Any]
    source: str
    device: dict[str, Any]
    sfreq_hz: float
    channels: tuple[str, ...]
    start: str
    end: str | None
    status: str
    n_trials: int
    n_labelled: int
    n_samples: int
    owner_pid: int
    owner_host: str

    @property
    def eeg_seconds(self) -> float:
        """Seconds of EEG stored (samples / rate)."""
        return self.n_samples / self.sfreq_hz if self.sfreq_hz else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (without the full protocol)."""
        return {
            "id": self.id,
            "participant": self.participant,
            "protocol": self.protocol_name,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "trials": self.n_trials,
            "labelled": self.n_labelled,
            "eeg_seconds": round(self.eeg_seconds, 3),
            "samples": self.n_samples,
        }


@dataclass(frozen=True)
class Trial:
    """One trial row."""

    id: int
    session_id: int
    stimulus_id: str
    intended: str | None
    onset_t: float
    offset_t: float
    onset_index: int | None
    offset_index: int | None
    label: str | None
    valence: int | None
    arousal: int | None
    status: str = "complete"
    contact: dict[str, Any] | None = None  # the headset's worst contact quality during the trial

    @property
    def bad_contact(self) -> list[str]:
        """Electrodes whose contact was bad (or absent) at some time during the trial."""
        return list((self.contact or {}).get("bad_channels", []))


@dataclass(frozen=True)
class Marker:
    """One marker row."""

    id: int
    session_id: int
    t: float
    sample_index: int | None
    text: str


@dataclass(frozen=True)
class StoredGap:
    """One row of the gaps table: samples missing after source index ``after_index``."""

    session_id: int
    after_index: int
    start_t: float
    end_t: float
    n_missing: int
    reason: str


@dataclass(frozen=True)
class Participant:
    """One participant row (pseudonymous: no names are stored)."""

    id: str
    age: int | None
    sex: str | None


@dataclass
class _Owner:
    pid: int
    host: str
    marker: str = field(default="")


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def process_marker(pid: int) -> str:
    """A string that identifies one run of process ``pid`` on this boot ("" if unknown).

    On Linux: the boot id and the process start time in clock ticks, so a pid reused by
    another process (or after a reboot) does not look like the original owner.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{boot}:{fields[19]}"  # field 22 of stat: starttime


def process_alive(pid: int, marker: str) -> bool:
    """Whether the process that wrote ``(pid, marker)`` still runs on this host (the same
    pid, and the same start time when ``marker`` is given: not a later process that got
    the pid again)."""
    return pid_alive(pid) and (not marker or process_marker(pid) == marker)


def validate_participant(pid: object, pattern: str | None = None) -> str:
    """Check a pseudonymous participant id; return it.

    Parameters
    ----------
    pid : str
        The id; at most 32 characters.
    pattern : str, optional
        The lab's rule (a regular expression the whole id must match); default
        :data:`DEFAULT_PARTICIPANT_PATTERN`, letters then digits (``P01``, ``S12``).

    Raises
    ------
    StoreError
        If the id breaks the rule. The message never repeats the refused id: it may be a
        name, and a name must not reach any log.
    """
    rule = pattern or DEFAULT_PARTICIPANT_PATTERN
    if isinstance(pid, str) and len(pid) <= MAX_PARTICIPANT_ID:
        try:
            if re.fullmatch(rule, pid):
                return pid
        except re.error as exc:
            raise StoreError(f"participant id pattern {rule!r} is not a regular expression: {exc}") from None
    if rule == DEFAULT_PARTICIPANT_PATTERN:
        raise StoreError("participant id must be a pseudonymous code, letters then digits such as P01 or S12 "
                         "(ids are codes, not names; the id given was not stored)")
    raise StoreError(f"participant id must be a pseudonymous code matching {rule!r}, at most "
                     f"{MAX_PARTICIPANT_ID} characters (ids are codes, not names; the id given was not stored)")


def bids_label(pid: str) -> str:
    """The BIDS ``sub-`` label of a participant id: the id when it is alphanumeric, else
    its letters and digits plus a short hash of the whole id, so ``P-01`` and ``P01`` never
    become the same subject."""
    if pid.isalnum() and pid.isascii():
        return pid
    import hashlib

    kept = "".join(c for c in pid if c.isascii() and c.isalnum()) or "x"
    return f"{kept}x{hashlib.sha1(pid.encode('utf-8')).hexdigest()[:6]}"


def check_label(label: object, allowed: Sequence[str] | None = None) -> str:
    """Check a reported label (one of ``allowed`` when given); return it.

    Raises
    ------
    LabelError
        An empty label, or one outside ``allowed``.
    """
    if not isinstance(label, str) or not label.strip():
        raise LabelError(f"trial label must be a non-empty string, got {label!r}")
    if allowed is not None and label not in allowed:
        raise LabelError(f"label must be one of {', '.join(allowed)}, got {label!r}")
    return label


def check_sam(name: str, value: object) -> int | None:
    """Check a SAM rating (``None`` = not given); return it as an int.

    Raises
    ------
    LabelError
        A value that is not a whole number from :data:`SAM_MIN` to :data:`SAM_MAX`.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not SAM_MIN <= int(value) <= SAM_MAX:
        raise LabelError(f"SAM {name} must be a whole number {SAM_MIN}-{SAM_MAX}, got {value!r}")
    return int(value)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise StoreError(f"session status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


class SessionStore:
    """The session store: one SQLite file in WAL mode.

    Parameters
    ----------
    path : str or Path
        The store file (created with its directory if missing, unless ``readonly``).
    readonly : bool
        Open for reading only (exports, listings); nothing is written, stale sessions
        are *reported* as ``interrupted`` but not rewritten.
    busy_timeout_s : float
        How long a write waits for another process's lock before :class:`StoreError`.
    participant_pattern : str, optional
        The rule new participant ids must follow (see :func:`validate_participant`).

    Raises
    ------
    StoreError
        If the file cannot be created or opened, is not a Duygu store, is read-only
        (when writing), or is locked by another process for longer than the timeout.

    Notes
    -----
    One connection is shared by the threads of a process behind a lock. Each public
    write method commits before it returns.
    """

    def __init__(self, path: str | Path, readonly: bool = False, busy_timeout_s: float = 5.0,
                 participant_pattern: str | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        self.participant_pattern = participant_pattern
        self._lock = threading.RLock()
        self._owner = _Owner(os.getpid(), socket.gethostname(), process_marker(os.getpid()))
        #: True if this object made the file (see :meth:`discard_if_unused`)
        self.created = not readonly and not self.path.exists()
        self._conn = self._open()

    # -- opening ------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory, expected a file")
        if self.readonly:
            if not self.path.exists():
                raise StoreError(f"store {self.path} does not exist")
            query = "mode=ro"
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store directory {self.path.parent}: {exc.strerror}") from exc
            self._check_writable()
            query = "mode=rwc"
        try:
            conn = self._connect(query)
        except sqlite3.OperationalError as exc:
            wal = Path(f"{self.path}-wal")
            if not (self.readonly and (exc.sqlite_errorcode & 0xFF) == _SQLITE_CANTOPEN
                    and not (wal.exists() and wal.stat().st_size)):
                raise self._error(exc, "opening") from exc
            # a WAL store on read-only media with no WAL left: nobody can write it
            try:
                conn = self._connect("mode=ro&immutable=1")
            except sqlite3.Error as exc2:
                raise self._error(exc2, "opening") from exc2
        except sqlite3.Error as exc:
            raise self._error(exc, "opening") from exc
        self._conn = conn
        self.schema_version = int(conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])
        if not self.readonly:
            self.recover_stale()
        return conn

    def _connect(self, query: str) -> sqlite3.Connection:
        """Connect and check (or create) the schema; sqlite errors propagate."""
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?{query}"
        conn = sqlite3.connect(
            uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            if not self.readonly:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"store {self.path} cannot use WAL journaling (got {mode})")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                self._migrate(conn)
            else:
                self._check_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_writable(self) -> None:
        target = self.path if self.path.exists() else self.path.parent
        statvfs = getattr(os, "statvfs", None)  # missing on Windows
        if statvfs is not None and statvfs(target).f_flag & os.ST_RDONLY:
            raise StoreError(f"store {target} is on a read-only file system")
        if not os.access(target, os.W_OK):
            raise StoreError(f"store {target} is read-only (no write permission)")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not a Duygu session store (no schema_version table)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version is None or version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, this Duygu reads up to {SCHEMA_VERSION}"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" in tables:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] == 1:
                self._upgrade_from_v1(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "schema_version" not in tables:
                raise StoreError(
                    f"{self.path} is an SQLite file but not a Duygu session store (no schema_version table)"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is None:
                conn.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {row[0]}, this Duygu reads up to {SCHEMA_VERSION}"
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _upgrade_from_v1(self, conn: sqlite3.Connection) -> None:
        """Schema 1 -> 2 in one transaction: sessions may be ``failed`` (the table is rebuilt,
        SQLite cannot change a CHECK constraint), trials get a ``status``, gaps a table."""
        sessions_sql = next(st for st in _SCHEMA.split(";") if "TABLE IF NOT EXISTS sessions" in st)
        conn.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] != 1:
                    conn.execute("ROLLBACK")  # another process upgraded it meanwhile
                    return
                conn.execute("ALTER TABLE trials ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'"
                             " CHECK (status IN ('complete', 'interrupted'))")
                conn.execute("ALTER TABLE trials ADD COLUMN contact TEXT")
                conn.execute(sessions_sql.replace("TABLE IF NOT EXISTS sessions", "TABLE sessions_v2"))
                conn.execute("INSERT INTO sessions_v2 SELECT * FROM sessions")
                conn.execute("DROP TABLE sessions")
                conn.execute("ALTER TABLE sessions_v2 RENAME TO sessions")
                if conn.execute("PRAGMA foreign_key_check").fetchall():
                    raise StoreError(f"store {self.path}: upgrading to schema 2 broke a reference; nothing was changed")
                conn.execute("INSERT INTO schema_version(version) VALUES (2)")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        reason = str(exc)
        if code == _SQLITE_FULL:
            return StoreError(f"disk full while {doing} store {self.path}: {reason}")
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreError(
                f"store {self.path} is locked by another process (waited {self.busy_timeout_s:g} s; "
                "close the other program or try again)"
            )
        if code == _SQLITE_READONLY:
            return StoreError(f"store {self.path} is read-only: {reason}")
        if code in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
            return StoreError(f"{self.path} is not a Duygu session store (not a valid SQLite database)")
        if code == _SQLITE_CANTOPEN:
            return StoreError(f"cannot open store {self.path}: {reason}")
        if code == _SQLITE_IOERR:
            return StoreError(f"I/O error while {doing} store {self.path}: {reason}")
        return StoreError(f"store {self.path}: {reason} (while {doing})")

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite errors become :class:`StoreError`."""
        if self.readonly:
            raise StoreError(f"store {self.path} was opened read-only; cannot {doing}")
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._error(exc, doing) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite has already rolled back (e.g. after SQLITE_FULL)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, "reading") from exc

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens on close)."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()

    def discard_if_unused(self) -> bool:
        """Close the store; if this object created its file and nothing was ever written
        to it, remove it (with its ``-wal``/``-shm``): a session refused before it started
        (a source that is not there) leaves no empty store behind. A store that existed
        before, or holds a single row, is always kept. Returns True if it was removed."""
        with self._lock:
            unused = False
            if self.created:
                try:
                    tables = [r[0] for r in self._conn.execute(
                        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                        " AND name != 'schema_version'")]
                    unused = all(self._conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() is None
                                 for t in tables)
                except sqlite3.Error:
                    pass  # unreadable: kept
            self.close()
        if not unused:
            return False
        for file in store_files(self.path):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        return True

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stale sessions -------------------------------------------------------------------
    def _is_stale(self, pid: int, host: str, marker: str) -> bool:
        if host != self._owner.host:
            return False  # another machine's session: we cannot tell, leave it running
        return not process_alive(pid, marker)

    def recover_stale(self) -> list[int]:
        """Mark sessions left ``running`` by a process that is gone as ``interrupted``.

        Returns the ids changed. The end time is the last write of the session.
        """
        rows = self._read("SELECT id, owner_pid, owner_host, owner_marker FROM sessions WHERE status='running'")
        stale = [r[0] for r in rows if self._is_stale(r[1], r[2], r[3])]
        if stale:
            with self._write("marking interrupted sessions") as conn:
                conn.executemany(
                    "UPDATE sessions SET status='interrupted', end=updated WHERE id=? AND status='running'",
                    [(s,) for s in stale],
                )
        return stale

    def free_space_bytes(self) -> int:
        """Free space on the store's file system (for a preflight check)."""
        return shutil.disk_usage(self.path.parent).free

    # -- participants -----------------------------------------------------------------------
    def add_participant(self, pid: str, age: int | None = None, sex: str | None = None) -> str:
        """Add (or update the age/sex of) a participant with a pseudonymous id.

        Parameters
        ----------
        pid : str
            Pseudonymous code, ``[A-Za-z0-9_-]{1,32}``; never a name.
        age : int, optional
            Age in years, 0-120.
        sex : str, optional
            ``F``, ``M`` or ``O`` (``female``, ``male``, ``other`` are accepted).
        """
        validate_participant(pid, self.participant_pattern)
        if age is not None:
            if isinstance(age, bool) or not isinstance(age, (int, np.integer)) or not 0 <= int(age) <= 120:
                raise StoreError(f"participant age must be a whole number of years 0-120, got {age!r}")
            age = int(age)
        if sex is not None:
            key = str(sex).strip().lower()
            if key not in SEXES:
                raise StoreError(f"participant sex must be F, M or O, got {sex!r}")
            sex = SEXES[key]
        with self._write("adding a participant") as conn:
            conn.execute(
                "INSERT INTO participants(id, age, sex, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET age=COALESCE(excluded.age, age), sex=COALESCE(excluded.sex, sex)",
                (pid, age, sex, _now_iso()),
            )
        return pid

    def participants(self) -> list[Participant]:
        """All participants, by id."""
        return [Participant(*r) for r in self._read("SELECT id, age, sex FROM participants ORDER BY id")]

    def participant(self, pid: str) -> Participant:
        rows = self._read("SELECT id, age, sex FROM participants WHERE id=?", (pid,))
        if not rows:
            raise StoreError(f"unknown participant {pid!r} in store {self.path}")
        return Participant(*rows[0])

    # -- sessions -------------------------------------------------------------------------
    def start_session(
        self,
        participant: str,
        protocol: dict[str, Any],
        source: str,
        device: dict[str, Any] | None = None,
        sfreq_hz: float = SFREQ_HZ,
        channels: Sequence[str] = EPOC_CHANNELS,
    ) -> int:
        """Create a ``running`` session owned by this process; return its id.

        The participant is added if new. ``protocol`` is stored as JSON; its ``name``
        key (if any) is the protocol name shown in listings.
        """
        validate_participant(participant, self.participant_pattern)
        try:
            protocol_json = json.dumps(protocol, default=str)
            device_json = json.dumps(device or {}, default=str)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"session protocol and device must be JSON-serialisable: {exc}") from exc
        name = str(protocol.get("name", "")) if isinstance(protocol, dict) else ""
        now = _now_iso()
        with self._write("starting a session") as conn:
            conn.execute(
                "INSERT INTO participants(id, created) VALUES (?, ?) ON CONFLICT(id) DO NOTHING",
                (participant, now),
            )
            cur = conn.execute(
                "INSERT INTO sessions(participant, protocol, protocol_name, source, device, sfreq_hz, channels,"
                " start, updated, status, owner_pid, owner_host, owner_marker)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    participant, protocol_json, name, str(source), device_json, float(sfreq_hz),
                    json.dumps(list(channels)), now, now, self._owner.pid, self._owner.host, self._owner.marker,
                ),
            )
            session_id = int(cur.lastrowid or 0)
        return session_id

    def finish_session(self, session_id: int, status: str = "completed") -> None:
        """Close a session with ``completed``, ``aborted``, ``interrupted`` or ``failed``, and
        checkpoint the WAL into the main file (so a plain copy of the ``.sqlite`` file made
        between sessions holds everything)."""
        _check_status(status)
        if status == "running":
            raise StoreError("finish_session status must be completed, aborted, interrupted or failed, got 'running'")
        self._require_session(session_id)
        now = _now_iso()
        with self._write("finishing a session") as conn:
            conn.execute("UPDATE sessions SET status=?, end=?, updated=? WHERE id=?", (status, now, now, session_id))
        self.checkpoint()

    def checkpoint(self) -> bool:
        """Move what the WAL holds into the main file (without waiting for readers);
        ``True`` if every page was moved."""
        if self.readonly:
            return False
        with self._lock:
            try:
                busy, _log, _moved = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                return False
        return not busy

    def backup(self, out: str | Path) -> Path:
        """Write one self-contained copy of the store to ``out`` (SQLite's online backup:
        consistent while sessions are written; no ``-wal`` file needed beside it).

        The copy is written to a temporary name in the same folder and renamed when
        complete. ``out`` must not exist.
        """
        out = Path(out)
        if out.exists():
            raise StoreError(f"backup path {out} exists; choose a new file")
        try:
            with atomic_output(out) as tmp:  # no half copy is ever left, whatever ends it
                dst = sqlite3.connect(str(tmp))
                try:
                    with self._lock:
                        self._conn.backup(dst)
                    dst.execute("PRAGMA journal_mode=DELETE")
                finally:
                    dst.close()
        except sqlite3.Error as exc:
            raise self._error(exc, "backing up") from exc
        except OSError as exc:
            raise StoreError(f"cannot write backup {out}: {exc.strerror}") from exc
        return out

    def _check_session_in(self, conn: sqlite3.Connection, session_id: int) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE id=?", (int(session_id),)).fetchone() is None:
            raise StoreError(f"unknown session id {session_id} in store {self.path}")

    def _require_session(self, session_id: int) -> None:
        if not self._read("SELECT 1 FROM sessions WHERE id=?", (int(session_id),)):
            raise StoreError(f"unknown session id {session_id} in store {self.path}")

    _SESSION_SQL = (
        "SELECT s.id, s.participant, s.protocol_name, s.protocol, s.source, s.device, s.sfreq_hz, s.channels,"
        " s.start, s.end, s.status,"
        " (SELECT COUNT(*) FROM trials t WHERE t.session_id=s.id),"
        " (SELECT COUNT(*) FROM trials t WHERE t.session_id=s.id AND t.label IS NOT NULL),"
        " (SELECT COALESCE(SUM(n_samples), 0) FROM eeg_chunks c WHERE c.session_id=s.id),"
        " s.owner_pid, s.owner_host, s.owner_marker, s.updated FROM sessions s"
    )

    def _session_info(self, row: tuple[Any, ...]) -> SessionInfo:
        status, end = row[10], row[9]
        if status == "running" and self._is_stale(row[14], row[15], row[16]):
            status, end = "interrupted", row[17]  # read-only view of a stale session
        return SessionInfo(
            id=row[0], participant=row[1], protocol_name=row[2], protocol=json.loads(row[3]), source=row[4],
            device=json.loads(row[5]), sfreq_hz=row[6], channels=tuple(json.loads(row[7])), start=row[8],
            end=end, status=status, n_trials=row[11], n_labelled=row[12], n_samples=row[13],
            owner_pid=row[14], owner_host=row[15],
        )

    def sessions(self, participants: Sequence[str] | None = None) -> list[SessionInfo]:
        """All sessions (of the given participants), oldest first."""
        rows = self._read(self._SESSION_SQL + " ORDER BY s.id")
        infos = [self._session_info(r) for r in rows]
        if participants is not None:
            wanted = set(participants)
            infos = [i for i in infos if i.participant in wanted]
        return infos

    def session(self, session_id: int) -> SessionInfo:
        """One session; :class:`StoreError` if the id is unknown."""
        rows = self._read(self._SESSION_SQL + " WHERE s.id=?", (int(session_id),))
        if not rows:
            raise StoreError(f"unknown session id {session_id} in store {self.path}")
        return self._session_info(rows[0])

    # -- EEG --------------------------------------------------------------------------------
    def append_eeg(
        self,
        session_id: int,
        data: NDArray[np.floating],
        timestamps: NDArray[np.floating],
        first_index: int,
    ) -> None:
        """Store one chunk of samples (committed when this returns).

        Parameters
        ----------
        data : ndarray, shape (n, 14)
            Samples in µV (stored as float32).
        timestamps : ndarray, shape (n,)
            EEG-clock time of each sample (float64).
        first_index : int
            Source sample index of ``data[0]``.
        """
        data = np.asarray(data)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != len(EPOC_CHANNELS):
            raise StoreError(f"EEG chunk must have shape (n, {len(EPOC_CHANNELS)}), got {data.shape}")
        if len(timestamps) != len(data):
            raise StoreError(f"EEG chunk has {len(data)} samples but {len(timestamps)} timestamps")
        if len(data) == 0:
            return
        if not np.all(np.isfinite(timestamps)):
            raise StoreError("EEG chunk timestamps must be finite")
        blob = np.ascontiguousarray(data, dtype="<f4").tobytes()
        tblob = np.ascontiguousarray(timestamps, dtype="<f8").tobytes()
        first_index = int(first_index)
        with self._write("writing EEG to") as conn:
            self._check_session_in(conn, session_id)
            # idempotent: a chunk retried after an ambiguous failure only adds what is new
            prev = conn.execute(
                "SELECT first_index + n_samples FROM eeg_chunks WHERE session_id=? AND first_index<=?"
                " ORDER BY first_index DESC LIMIT 1",
                (int(session_id), first_index + len(data) - 1),
            ).fetchone()
            if prev is not None and prev[0] > first_index:
                skip = prev[0] - first_index
                if skip >= len(data):
                    return
                data, timestamps, first_index = data[skip:], timestamps[skip:], first_index + skip
                blob = np.ascontiguousarray(data, dtype="<f4").tobytes()
                tblob = np.ascontiguousarray(timestamps, dtype="<f8").tobytes()
            conn.execute(
                "INSERT INTO eeg_chunks(session_id, first_index, n_samples, first_t, last_t, data, timestamps)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(session_id), first_index, len(data), float(timestamps[0]), float(timestamps[-1]),
                 blob, tblob),
            )
            conn.execute("UPDATE sessions SET updated=? WHERE id=?", (_now_iso(), int(session_id)))

    def eeg(
        self,
        session_id: int,
        start_index: int | None = None,
        stop_index: int | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """The stored EEG of a session, in index order.

        Parameters
        ----------
        start_index, stop_index : int, optional
            Keep samples with ``start_index <= index < stop_index``.

        Returns
        -------
        data : ndarray, shape (n, 14), µV
        timestamps : ndarray, shape (n,)
        indices : ndarray, shape (n,) of int64
            Source sample index of each row (jumps where samples are missing).
        """
        self._require_session(session_id)
        sql = "SELECT first_index, n_samples, data, timestamps FROM eeg_chunks WHERE session_id=?"
        params: list[Any] = [int(session_id)]
        if start_index is not None:
            sql += " AND first_index + n_samples > ?"
            params.append(int(start_index))
        if stop_index is not None:
            sql += " AND first_index < ?"
            params.append(int(stop_index))
        rows = self._read(sql + " ORDER BY first_index", params)
        n_ch = len(EPOC_CHANNELS)
        if not rows:
            return np.zeros((0, n_ch)), np.zeros(0), np.zeros(0, dtype=np.int64)
        data = np.concatenate([np.frombuffer(r[2], dtype="<f4").reshape(r[1], n_ch) for r in rows]).astype(np.float64)
        times = np.concatenate([np.frombuffer(r[3], dtype="<f8") for r in rows]).astype(np.float64)
        indices = np.concatenate([r[0] + np.arange(r[1], dtype=np.int64) for r in rows])
        keep = np.ones(len(indices), dtype=bool)
        if start_index is not None:
            keep &= indices >= start_index
        if stop_index is not None:
            keep &= indices < stop_index
        return data[keep], times[keep], indices[keep]

    def eeg_extent(self, session_id: int) -> tuple[int, float | None]:
        """``(samples stored, timestamp of the last stored sample or None)``."""
        rows = self._read(
            "SELECT COALESCE(SUM(n_samples), 0), MAX(last_t) FROM eeg_chunks WHERE session_id=?", (int(session_id),)
        )
        return int(rows[0][0]), rows[0][1]

    # -- markers and trials -----------------------------------------------------------------
    def add_marker(self, session_id: int, t: float, text: str, sample_index: int | None = None) -> int:
        """Store a marker (EEG-clock time ``t``, free text); return its id."""
        if not str(text):
            raise StoreError("marker text must not be empty")
        with self._write("writing a marker to") as conn:
            self._check_session_in(conn, session_id)
            cur = conn.execute(
                "INSERT INTO markers(session_id, t, sample_index, text) VALUES (?, ?, ?, ?)",
                (int(session_id), float(t), None if sample_index is None else int(sample_index), str(text)),
            )
            return int(cur.lastrowid or 0)

    def add_gap(self, session_id: int, after_index: int, start_t: float, end_t: float, n_missing: int,
                reason: str) -> None:
        """Record that samples are missing after source index ``after_index`` (a gaps row
        and a ``gap:`` marker, in one transaction)."""
        with self._write("writing a gap to") as conn:
            self._check_session_in(conn, session_id)
            conn.execute(
                "INSERT INTO gaps(session_id, after_index, start_t, end_t, n_missing, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (int(session_id), int(after_index), float(start_t), float(end_t), int(n_missing), str(reason)),
            )
            conn.execute(
                "INSERT INTO markers(session_id, t, sample_index, text) VALUES (?, ?, ?, ?)",
                (int(session_id), float(start_t), int(after_index), f"gap:{int(n_missing)} samples missing ({reason})"),
            )

    def gaps(self, session_id: int) -> list[StoredGap]:
        """The recorded gaps of a session, in index order (none in a schema-1 store)."""
        self._require_session(session_id)
        if self.schema_version < 2:
            return []
        rows = self._read(
            "SELECT session_id, after_index, start_t, end_t, n_missing, reason FROM gaps WHERE session_id=?"
            " ORDER BY after_index, id", (int(session_id),))
        return [StoredGap(*r) for r in rows]

    def markers(self, session_id: int) -> list[Marker]:
        """The markers of a session in time order."""
        self._require_session(session_id)
        rows = self._read(
            "SELECT id, session_id, t, sample_index, text FROM markers WHERE session_id=? ORDER BY t, id",
            (int(session_id),),
        )
        return [Marker(*r) for r in rows]

    def add_trial(
        self,
        session_id: int,
        stimulus_id: str,
        intended: str | None,
        onset_t: float,
        offset_t: float,
        onset_index: int | None,
        offset_index: int | None,
        status: str = "complete",
        contact: dict[str, Any] | None = None,
    ) -> int:
        """Store a trial (stimulus presentation); return its id.

        Times are on the EEG clock; indices are source sample indices (as in
        :meth:`append_eeg`). An ``interrupted`` trial (cut short by a pause or a fault)
        keeps its EEG for review but can never be labelled. ``contact`` is the headset's
        contact quality during the trial (``QualityReading.as_json()`` of the worst
        reading, with ``bad_channels``), stored as JSON.
        """
        if status not in TRIAL_STATUSES:
            raise StoreError(f"trial status must be one of {', '.join(TRIAL_STATUSES)}, got {status!r}")
        if not offset_t >= onset_t:
            raise StoreError(f"trial offset_t must be >= onset_t, got onset {onset_t} and offset {offset_t}")
        if onset_index is not None and offset_index is not None and offset_index < onset_index:
            raise StoreError(
                f"trial offset_index must be >= onset_index, got onset {onset_index} and offset {offset_index}"
            )
        with self._write("writing a trial to") as conn:
            self._check_session_in(conn, session_id)
            cur = conn.execute(
                "INSERT INTO trials(session_id, stimulus_id, intended, onset_t, offset_t, onset_index, offset_index,"
                " status, contact) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(session_id), str(stimulus_id), intended, float(onset_t), float(offset_t),
                 None if onset_index is None else int(onset_index),
                 None if offset_index is None else int(offset_index), status,
                 None if contact is None else json.dumps(contact, default=str)),
            )
            return int(cur.lastrowid or 0)

    def set_trial_label(
        self, trial_id: int, label: str, valence: int | None = None, arousal: int | None = None
    ) -> None:
        """Store the participant's label (and SAM valence/arousal 1-9) for a trial."""
        check_label(label)
        valence, arousal = check_sam("valence", valence), check_sam("arousal", arousal)
        rows = self._read("SELECT status FROM trials WHERE id=?", (int(trial_id),))
        if not rows:
            raise StoreError(f"unknown trial id {trial_id} in store {self.path}")
        if rows[0][0] != "complete":
            raise StoreError(f"trial {trial_id} was interrupted; an interrupted trial is never labelled")
        with self._write("writing a label to") as conn:
            conn.execute(
                "UPDATE trials SET label=?, valence=?, arousal=? WHERE id=?",
                (label, valence, arousal, int(trial_id)),
            )

    def trials(self, session_id: int) -> list[Trial]:
        """The trials of a session in onset order."""
        self._require_session(session_id)
        extra = "status, contact" if self.schema_version >= 2 else "'complete', NULL"  # a v1 store read-only
        rows = self._read(
            "SELECT id, session_id, stimulus_id, intended, onset_t, offset_t, onset_index, offset_index, label,"
            f" valence, arousal, {extra} FROM trials WHERE session_id=? ORDER BY onset_t, id",
            (int(session_id),),
        )
        return [Trial(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                      json.loads(r[12]) if r[12] else None) for r in rows]

    def labelled_trials(
        self,
        participants: Sequence[str] | None = None,
        session_ids: Sequence[int] | None = None,
    ) -> list[LabelledTrial]:
        """Every labelled trial with its EEG (onset to offset), for training.

        Trials without a label or without any stored sample are left out.
        """
        infos = self.sessions(participants)
        if session_ids is not None:
            wanted = {int(s) for s in session_ids}
            unknown = wanted - {i.id for i in self.sessions()}
            if unknown:
                raise StoreError(f"unknown session id(s) {sorted(unknown)} in store {self.path}")
            infos = [i for i in infos if i.id in wanted]
        out: list[LabelledTrial] = []
        for info in infos:
            gaps = self.gaps(info.id)
            for trial in self.trials(info.id):
                if trial.label is None or trial.status != "complete":
                    continue
                data, _times, idx = self._trial_samples(info, trial)
                if len(data) == 0:
                    continue
                inside = [g for g in gaps if idx[0] <= g.after_index < idx[-1]]
                pieces = contiguous_pieces(idx, [g.after_index for g in inside])
                if trial.onset_index is not None and trial.offset_index is not None:
                    expected = trial.offset_index - trial.onset_index  # edges that never arrived count too
                else:
                    expected = int(idx[-1] - idx[0] + 1)
                n_missing = max(0, expected - len(idx)) + sum(g.n_missing for g in inside)
                out.append(
                    LabelledTrial(
                        data=data, label=trial.label, trial_id=f"{info.id}:{trial.id}", subject=info.participant,
                        sfreq_hz=info.sfreq_hz, session_id=info.id, stimulus_id=trial.stimulus_id,
                        intended=trial.intended, n_missing=n_missing, pieces=pieces,
                        bad_contact=tuple(trial.bad_contact),
                    )
                )
        return out

    def _trial_samples(
        self, info: SessionInfo, trial: Trial
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        if trial.onset_index is not None and trial.offset_index is not None:
            return self.eeg(info.id, trial.onset_index, trial.offset_index)
        data, times, idx = self.eeg(info.id)
        keep = (times >= trial.onset_t) & (times < trial.offset_t)
        return data[keep], times[keep], idx[keep]



def contiguous_pieces(indices: NDArray[np.int64], gaps_after: Sequence[int] = ()) -> tuple[tuple[int, int], ...]:
    """Row ranges ``(start, stop)`` of stored samples with nothing missing inside.

    A piece ends where the source indices jump (samples the recorder never got) or
    after a sample that a recorded gap follows (``gaps_after`` holds the gaps'
    ``after_index``: the device lost samples there, although the buffer's own indices
    run on).
    """
    n = len(indices)
    if n == 0:
        return ()
    idx = np.asarray(indices, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    if len(gaps_after):
        pos = np.searchsorted(idx, np.asarray(gaps_after, dtype=np.int64), side="right")
        cuts = np.concatenate([cuts, pos[(pos > 0) & (pos < n)]])
    bounds = [0, *sorted({int(c) for c in cuts}), n]
    return tuple((a, b) for a, b in itertools.pairwise(bounds) if b > a)


def open_store(path: str | Path | None = None, readonly: bool = False) -> SessionStore:
    """Open the store at ``path`` or at the settings' default (``store_path``), with the
    settings' participant-id rule."""
    from acquisition.settings import load_settings

    settings = load_settings()
    return SessionStore(path or settings.store_path, readonly=readonly,
                        participant_pattern=settings.participant_pattern)

