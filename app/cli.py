"""The ``duygu`` command line: one entry point, one module per verb.

Each verb lives in ``app/commands/<verb>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run``
so that ``duygu --help`` stays fast. Errors a user can fix are :class:`DuyguError`
subclasses: they are printed as one line, ``duygu: error: ...``, with exit status 1.

Before ``run``, every output path is checked (``app.commands._common.check_outputs``):
a verb module may define ``output_directories(args)`` (flags naming folders) and
``written_store(args) -> Path | None`` (the session store the command line writes into,
which no output may name). SIGTERM and SIGHUP end a verb like Ctrl-C (exit status 130)
unless its module sets ``ENDING_SIGNALS = False``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from acquisition import __version__
from acquisition.errors import DuyguError
from app.commands._common import add_force_flags, check_outputs, ending_signals, outputs_of

#: verb -> module in app.commands (the module name differs where the verb is a keyword)
VERBS: dict[str, str] = {
    "gui": "gui",
    "demo": "demo",
    "sources": "sources",
    "simulate": "simulate",
    "quality": "quality",
    "record": "record",
    "session": "session",
    "sessions": "sessions",
    "evaluate": "evaluate",
    "train": "train",
    "predict": "predict",
    "music": "music",
    "bench": "bench",
}


def _load(verb: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"app.commands.{VERBS[verb]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="duygu",
        description="Duygu: EEG emotion lab (EPOC+ streaming, sessions, classifiers, live predictions).",
    )
    parser.add_argument("--version", action="version", version=f"duygu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress to stderr, and whole tracebacks of errors a thread survived")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        try:
            module = _load(verb)
        except ModuleNotFoundError as exc:
            if exc.name == f"app.commands.{VERBS[verb]}":
                continue  # verb not built yet
            raise
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        add_force_flags(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from app.logs import configure

    configure(verbose=bool(args.verbose))  # one line per message; tracebacks only with --verbose
    if args.verb is None:
        args = parser.parse_args(["gui", *(argv or sys.argv[1:])])
    module = args._module
    try:
        # SIGTERM and SIGHUP end every verb as Ctrl-C does, so its cleanup runs (temporary
        # files of unfinished outputs removed, a recording's tail stored); not the GUI: in
        # Qt's event loop the exception would surface inside whichever slot ran next
        with ending_signals(guard_outputs=True) if getattr(module, "ENDING_SIGNALS", True) else contextlib.nullcontext():
            directories = tuple(getattr(module, "output_directories", lambda _a: ())(args))
            store = getattr(module, "written_store", lambda _a: None)(args)
            stores = {} if store is None else {
                "--store" if getattr(args, "store", None) else "the default store (--store)": store}
            check_outputs(outputs_of(args), force=bool(getattr(args, "force", False)), directories=directories,
                          stores=stores)
            return int(module.run(args) or 0)
    except DuyguError as exc:
        print(f"duygu: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unreadable input or unwritable output path
        where = f" {exc.filename}" if exc.filename else ""
        print(f"duygu: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except OverflowError as exc:  # a number beyond what a count or a database integer holds
        print(f"duygu: error: a number given is too large ({exc})", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"duygu: interrupted ({exc})" if str(exc) else "duygu: interrupted", file=sys.stderr)
        return 130

if __name__ == "__main__":
    sys.exit(main())
