"""``duygu simulate --emotivpro`` in another process, for tests that need "EmotivPRO"."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def emotivpro(*args: str, prefix: str | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """Run the EmotivPRO simulator with ``args``; yield its stream prefix once its EEG and
    Contact-Quality streams are visible; stop it afterwards (SIGTERM: it ends as on Ctrl-C
    and writes its ``--json``).

    Its stderr goes to a file, never to a pipe nobody reads (liblsl logs there: a full pipe
    would block the simulator). If it does not end by itself on SIGTERM, or ends with an
    error, the test fails with the end of its stderr.
    """
    import pylsl

    prefix = prefix or f"Emo{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "simulate", "--emotivpro", "--prefix", prefix,
                                 "--follow-markers", "none", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err, text=True)

        def tail() -> str:
            err.seek(0)
            return err.read()[-2000:]

        stopped = True
        try:
            for suffix in ("EEG", "Contact-Quality"):
                if not pylsl.resolve_bypred(f"name='{prefix}-{suffix}'", 1, timeout_s):
                    raise AssertionError(f"the EmotivPRO simulator's {suffix} stream did not appear: {tail()}")
            yield prefix
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    stopped = False
                    proc.kill()
                    proc.wait(timeout=10)
        # reached only when the test body passed: a failure in it is never masked by these
        if not stopped:
            raise AssertionError(f"the EmotivPRO simulator did not stop on SIGTERM: {tail()}")
        if proc.returncode != 0:
            raise AssertionError(f"the EmotivPRO simulator ended with code {proc.returncode}: {tail()}")
