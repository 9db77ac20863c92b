"""Helpers for tests of the command line: one-line errors, file digests, a small store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.cli import main


def cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``duygu ARGV``, which must fail with exit status 1, and return its stderr,
    which must be one line."""
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"errors are one line: {err}"
    return err


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes (to show that a refused command left it unchanged)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
