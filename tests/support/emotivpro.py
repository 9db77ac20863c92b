"""``duygu simulate --emotivpro`` in another process, for tests that need "EmotivPRO"."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def emotivpro(*args: str, prefix: str | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """Run the EmotivPRO simulator with ``args``; yield its stream prefix once its EEG and
    Contact-Quality streams are visible; stop it afterwards."""
    import pylsl

    prefix = prefix or f"Emo{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "simulate", "--emotivpro", "--prefix", prefix,
                             "--follow-markers", "none", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        for suffix in ("EEG", "Contact-Quality"):
            if not pylsl.resolve_bypred(f"name='{prefix}-{suffix}'", 1, timeout_s):
                proc.kill()
                raise AssertionError(f"the EmotivPRO simulator's {suffix} stream did not appear: "
                                     f"{proc.communicate(timeout=10)[1][-2000:]}")
        yield prefix
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
