"""Session fixtures of the music tests, loaded with ``pytest_plugins`` so every music test
module shares one synthesised library (and xdist workers share it too)."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

import pytest

from tests.support.music_data import write_library


@pytest.fixture(scope="session")
def music_library_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A synthesised labelled library (4 emotions x 4 styles, 12 s each).

    Under pytest-xdist the workers of one run share it: the first builds it in the run's
    base folder under a file lock, the others wait and reuse it (the pytest-xdist recipe).
    """
    if worker_id == "master":
        return write_library(tmp_path_factory.mktemp("music-library"))
    shared = tmp_path_factory.getbasetemp().parent  # one folder per run, shared by its workers
    target = shared / "music-library"
    with open(shared / "music-library.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / ".complete").exists():
                write_library(target)
                (target / ".complete").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


@pytest.fixture(scope="session")
def music_library(music_library_dir: Path) -> Any:
    """:func:`models.music.load_library` of :func:`music_library_dir` (6 s segments every 3 s)."""
    from models import music

    return music.load_library(music_library_dir, segment_s=6.0, hop_s=3.0)
