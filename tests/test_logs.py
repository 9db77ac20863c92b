"""The command line's logging: an error an engine thread survives is one line on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = """
import logging, sys, threading
from app.logs import configure
configure(verbose=sys.argv[1] == "verbose")
log = logging.getLogger("acquisition.sources.base")

def reader():
    try:
        raise ValueError("chunk of 3 columns,\\n expected 19")
    except ValueError:
        log.exception("lsl source could not take a chunk")

t = threading.Thread(target=reader)
t.start()
t.join()
logging.getLogger("x").info("only with --verbose")
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_a_logged_exception_is_one_line_unless_verbose(mode: str) -> None:
    done = subprocess.run([sys.executable, "-c", SNIPPET, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=25)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    if mode == "quiet":
        assert len(lines) == 1, lines
        assert lines[0].endswith("ERROR acquisition.sources.base: lsl source could not take a chunk "
                                 "(ValueError: chunk of 3 columns, expected 19)")
    else:
        assert "Traceback (most recent call last):" in done.stderr
        assert lines[-1].endswith("x: only with --verbose")
