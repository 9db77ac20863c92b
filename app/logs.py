"""Logging for the command line: every message one line on stderr.

Engine threads (a source's reader, the store recorder, the live predictor) log the
errors they survive with :func:`logging.Logger.exception`. On a terminal an operator
needs the reason, not the stack: without ``--verbose`` a logged exception becomes one
line, ``<message> (<ExceptionType>: <text>)``; ``--verbose`` keeps the whole traceback
for a bug report.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """A formatter that folds a record's exception into its one line."""

    def format(self, record: logging.LogRecord) -> str:
        exc_info, stack_info = record.exc_info, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.stack_info = exc_info, stack_info
        if exc_info and exc_info[1] is not None:
            exc = exc_info[1]
            text = " ".join(str(exc).split())
            reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            if reason not in line:
                line = f"{line} ({reason})"
        return " ".join(line.split("\n"))


def configure(verbose: bool) -> None:
    """Log to stderr: WARNING and above, one line each; with ``verbose``, INFO and above
    with whole tracebacks. Like :func:`logging.basicConfig`, nothing changes when the
    root logger already has handlers (an embedding program's, a test runner's)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT) if verbose else OneLineFormatter(FORMAT))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
