"""Shared fixtures: isolated settings, the shared data folder, unique LSL names."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Evaluations use every core by default (--jobs -1). pytest-xdist already runs 4 workers on
# the 2 cores, so in the suite "all cores" means one: the work units then run in-process
# (joblib's sequential backend). Tests of parallel runs ask for --jobs N / n_jobs=N.
os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point Duygu's data and config directories at a temporary folder for every test."""
    base = tmp_path_factory.mktemp("duygu-home")
    monkeypatch.setenv("DUYGU_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("DUYGU_CONFIG_DIR", str(base / "config"))
    monkeypatch.delenv("DUYGU_STORE", raising=False)
    monkeypatch.delenv("DUYGU_CONFIG", raising=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project (as in CI); a test fails if it is missing."""
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture
def eye_state_csv(shared_data: Path) -> Path:
    return shared_data / "eeg_eye_state" / "eeg-eye-state.csv"


@pytest.fixture
def lsl_name() -> str:
    """A stream name no other test uses."""
    return f"duygu-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A small session store on disk (one 2 s session, one labelled trial), checkpointed."""
    from support.store_data import fill_session

    from acquisition.store.sqlite import SessionStore

    path = tmp_path / "lab.sqlite"
    with SessionStore(path) as store:
        fill_session(store, seconds=2, trials=((0.2, 1.8, "happy"),))
        store.checkpoint()
    return path
