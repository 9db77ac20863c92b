"""Session fixtures of the music tests, loaded with ``pytest_plugins`` so every music test
module shares one synthesised library per worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.music_data import write_library


@pytest.fixture(scope="session")
def music_library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesised labelled library (4 emotions x 4 styles, 12 s each), once per worker."""
    return write_library(tmp_path_factory.mktemp("music-library"))


@pytest.fixture(scope="session")
def music_library(music_library_dir: Path) -> Any:
    """:func:`models.music.load_library` of :func:`music_library_dir` (6 s segments every 3 s)."""
    from models import music

    return music.load_library(music_library_dir, segment_s=6.0, hop_s=3.0)
