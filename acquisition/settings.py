"""Duygu's one typed settings object, and how Duygu writes the files it makes.

Defaults live here; a TOML file (``$DUYGU_CONFIG`` or ``<user config dir>/settings.toml``)
overrides them; ``DUYGU_*`` environment variables override both. Tests point
``DUYGU_CONFIG_DIR`` and ``DUYGU_DATA_DIR`` at a temporary directory.

:func:`atomic_output` is the one way a finished file is written: to a temporary name in
the same folder, renamed over the final name only when complete, so a killed process
never leaves a half-written report, bundle or export behind. It never replaces a session
store (:func:`is_session_store`), whatever the caller asked, and it sweeps the temporary
names that writers which died before their rename left behind (:func:`sweep_stale_partials`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from acquisition.errors import DuyguError


@dataclass(frozen=True)
class Settings:
    """Every user-tunable default, with units in the names."""

    data_dir: Path
    config_dir: Path
    default_source: str = "simulated"
    buffer_seconds: float = 600.0
    loss_timeout_s: float = 2.0
    window_s: float = 4.0
    hop_s: float = 0.25
    feature_preset: str = "default"
    bandpass_hz: tuple[float, float] = (1.0, 50.0)
    notch_hz: float | None = 50.0
    display_seconds: float = 10.0
    gui_refresh_ms: int = 33
    #: the rule pseudonymous participant ids must follow (a regular expression)
    participant_pattern: str = r"[A-Za-z]+[0-9]+"
    #: a session paused by a fault longer than this ends as ``failed``
    max_outage_s: float = 120.0
    #: authors written into exported BIDS datasets (dataset_description.json)
    authors: tuple[str, ...] = ()

    @property
    def store_path(self) -> Path:
        """Default session store (``--store`` overrides it)."""
        env = os.environ.get("DUYGU_STORE")
        return Path(env) if env else self.data_dir / "duygu.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def features_cache_dir(self) -> Path:
        """Feature tables of stored trials and DEAP files, keyed by content (safe to delete)."""
        return self.data_dir / "cache" / "features"


def _dirs() -> tuple[Path, Path]:
    import platformdirs

    data = os.environ.get("DUYGU_DATA_DIR") or platformdirs.user_data_dir("duygu", appauthor=False)
    config = os.environ.get("DUYGU_CONFIG_DIR") or platformdirs.user_config_dir("duygu", appauthor=False)
    return Path(data), Path(config)


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings: defaults, then the TOML file, then ``DUYGU_*`` variables.

    Raises
    ------
    DuyguError
        If the file is not valid TOML or names an unknown setting.
    """
    data_dir, config_dir = _dirs()
    values: dict[str, object] = {}
    path = path or Path(os.environ.get("DUYGU_CONFIG") or config_dir / "settings.toml")
    if path.exists():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise DuyguError(f"settings file {path} is not valid TOML: {exc}") from exc
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in fields:
        env = os.environ.get(f"DUYGU_{name.upper()}")
        if env is not None and name not in ("data_dir", "config_dir"):
            if str(fields[name].type) == "str":
                values[name] = env
                continue
            try:
                values[name] = tomllib.loads(f"v = {env}")["v"] if env[:1] in "[0123456789-" else env
            except tomllib.TOMLDecodeError:
                raise DuyguError(
                    f"environment variable DUYGU_{name.upper()}={env!r} is not a number or list"
                ) from None
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DuyguError(f"settings file {path} has unknown setting(s): {', '.join(unknown)}")
    for name in ("bandpass_hz", "authors"):
        if name in values:
            values[name] = tuple(values[name])  # type: ignore[arg-type]
    data_dir = Path(str(values.pop("data_dir", data_dir))).expanduser()
    config_dir = Path(str(values.pop("config_dir", config_dir))).expanduser()
    return Settings(data_dir=data_dir, config_dir=config_dir, **values)  # type: ignore[arg-type]


_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_session_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an SQLite file holding a Duygu session store (or its WAL)."""
    path = Path(path)
    if path.name.endswith(("-wal", "-shm")) and path.with_name(path.name[:-4]).is_file():
        return is_session_store(path.with_name(path.name[:-4]))
    try:
        with path.open("rb") as f:
            if f.read(16) != _SQLITE_MAGIC:
                return False
    except OSError:
        return False
    import sqlite3
    import urllib.parse

    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return True  # an SQLite file we cannot even read: treat it as precious
    return row is not None


def store_files(path: str | os.PathLike[str]) -> tuple[Path, ...]:
    """The files a session store at ``path`` is made of (resolved): the database and the
    ``-wal``, ``-shm`` and ``-journal`` SQLite keeps beside it."""
    key = Path(path).expanduser().resolve()
    return tuple(key.with_name(key.name + suffix) for suffix in ("", "-wal", "-shm", "-journal"))


def refuse_session_store(path: str | os.PathLike[str]) -> None:
    """Raise :class:`DuyguError` (one line) if ``path`` is an existing session store."""
    if is_session_store(path):
        raise DuyguError(f"{str(path)!r} is a session store; Duygu never overwrites one: choose another path")


def partial_name(final: str | os.PathLike[str], pid: int | None = None) -> Path:
    """The temporary name a writer with process id ``pid`` (this one by default) uses
    beside ``final`` while it writes: ``.NAME.partial-PID`` in the same folder."""
    final = Path(final)
    return final.with_name(f".{final.name}.partial-{os.getpid() if pid is None else pid}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host; True whenever that cannot be told."""
    if os.name != "posix" or pid <= 0:
        return True  # no safe liveness test (and os.kill(0, ...) means the process group)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the pid exists, trust it
    return stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")  # a zombie has ended


def sweep_stale_partials(final: str | os.PathLike[str]) -> list[Path]:
    """Remove the ``.NAME.partial-PID`` files or folders beside ``final`` whose writer is
    no longer running (killed before it could clean up); return what was removed.

    Temporary names of running processes (this one included) are left alone.
    """
    final = Path(final)
    prefix = f".{final.name}.partial-"
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):]
        if not entry.name.startswith(prefix) or not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # not ours to remove after all (permissions): leave it
        removed.append(entry)
    return removed


_ending_signal: list[str] = []  # the signal that asked this process to end (see below)


def note_ending_signal(name: str) -> None:
    """Remember that signal ``name`` asked this process to end. The CLI's handlers call
    this before they raise :class:`KeyboardInterrupt`, because C code calling back into
    Python can swallow that exception; :func:`raise_if_ending` raises it again where it
    matters (before an output is renamed into place)."""
    _ending_signal[:] = [name]


def clear_ending_signal() -> None:
    _ending_signal.clear()


def raise_if_ending() -> None:
    """Raise :class:`KeyboardInterrupt` if a noted signal asked this process to end."""
    if _ending_signal:
        raise KeyboardInterrupt(_ending_signal[0])


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block ends
    normally, delete it if the block raises (or the process dies before the rename).

    Raises
    ------
    DuyguError
        If ``path`` is an existing session store, before the block and again at the
        rename (nothing is replaced; the temporary file is removed).
    KeyboardInterrupt
        At the rename, if a signal asked the process to end meanwhile
        (:func:`note_ending_signal`), even when the handler's own exception was lost.
    """
    final = Path(path)
    refuse_session_store(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(final)
    tmp = partial_name(final)
    try:
        yield tmp
        refuse_session_store(final)  # it may have become one meanwhile (the verb's own store)
        raise_if_ending()  # a signal ended the process meanwhile: an output it was writing is not finished
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
