"""Run a CPU-heavy engine call in a child process, so it cannot hold this process's GIL.

A worker thread calls :func:`call_in_process` and waits; the GUI thread never does. The
child is started with ``spawn`` (never ``fork``: this process runs Qt and threads),
imports only the module it needs, and sends back the result or the error's type and
one-line message, which is raised again here as the same Duygu error type.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
from collections.abc import Callable
from typing import Any

from acquisition import errors


def _child(target: str, args: tuple[Any, ...], conn: Any, queue: Any = None) -> None:
    module_name, _, func_name = target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        if queue is not None:
            result = func(*args, progress=lambda fraction, text="": queue.put((float(fraction), str(text))))
        else:
            result = func(*args)
    except BaseException as exc:  # report every failure to the parent, then end
        conn.send(("error", type(exc).__name__, str(exc)))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


def call_in_process(target: str, *args: Any, cancelled: Callable[[], bool] | None = None,
                    progress: Callable[[float, str], None] | None = None, poll_s: float = 0.05) -> Any:
    """Call ``module:function(*args)`` in a spawned child process and return its result.

    With ``progress``, the function is called with a ``progress(fraction, text)`` keyword
    whose reports are relayed to ``progress`` here (in the calling thread).

    Raises
    ------
    DuyguError (or the subclass the child raised)
        With the child's one-line message.
    Cancelled-like
        :class:`app.workers.Cancelled` when ``cancelled()`` becomes true (the child is killed).
    """
    from app.workers import Cancelled

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    queue = ctx.Queue() if progress is not None else None
    proc = ctx.Process(target=_child, args=(target, args, child, queue), daemon=True, name=f"duygu-{target}")
    proc.start()
    child.close()
    try:
        while not parent.poll(poll_s):
            _relay(queue, progress)
            if cancelled is not None and cancelled():
                raise Cancelled(target)
            if not proc.is_alive() and not parent.poll(0):
                raise errors.DuyguError(f"{target} ended without an answer (exit code {proc.exitcode})")
        message = parent.recv()
        _relay(queue, progress)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if message[0] == "ok":
        return message[1]
    _, type_name, text = message
    exc_type = getattr(errors, type_name, None)
    if isinstance(exc_type, type) and issubclass(exc_type, errors.DuyguError):
        raise exc_type(text)
    raise errors.DuyguError(f"{type_name}: {text}")


def _relay(queue: Any, progress: Callable[[float, str], None] | None) -> None:
    import queue as queue_module

    if queue is None or progress is None:
        return
    while True:
        try:
            fraction, text = queue.get_nowait()
        except queue_module.Empty:
            return
        progress(fraction, text)
