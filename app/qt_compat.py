"""Work-around for a reference-count bug of PySide6 6.12 on Python 3.11.

``Signal.emit()`` returns ``True`` without taking a reference to it, so every emission
(pyqtgraph emits on every repaint) takes one reference from ``True``; some calls do the
same with ``None``. After enough of them the interpreter aborts with ``Fatal Python
error: bool_dealloc`` (or ``none_dealloc``), usually at exit. From Python 3.12 on these
objects are immortal and nothing needs doing. On 3.11 :func:`protect_bools` gives
``True``, ``False`` and ``None`` a reserve of 2**40 references, which the leak
cannot exhaust (at 10,000 emissions per second it lasts for years). Every module of
``app`` that imports Qt calls it first.
"""

from __future__ import annotations

import ctypes
import sys

_RESERVE = 1 << 40


def protect_bools() -> None:
    """Give ``True``, ``False`` and ``None`` a large reference reserve (idempotent; no-op on 3.12+)."""
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):  # immortal, or a debug build
        return
    for obj in (True, False, None):
        if sys.getrefcount(obj) < _RESERVE // 2:
            ctypes.c_ssize_t.from_address(id(obj)).value += _RESERVE


protect_bools()
