"""Duygu's one typed settings object, and how Duygu writes the files it makes.

Defaults live here; a TOML file (``$DUYGU_CONFIG`` or ``<user config dir>/settings.toml``)
overrides them; ``DUYGU_*`` environment variables override both. Tests point
``DUYGU_CONFIG_DIR`` and ``DUYGU_DATA_DIR`` at a temporary directory.

:func:`atomic_output` is the one way a finished file is written: to a temporary name in
the same folder, renamed over the final name only when complete, so a killed process
never leaves a half-written report, bundle or export behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block ends
    normally, delete it if the block raises (or the process dies before the rename)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        yield tmp
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
