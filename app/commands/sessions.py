"""``duygu sessions list|export|backup``: look into the session store, export sessions,
copy the store safely.

More subcommands plug in as modules ``app/commands/sessions_<name>.py`` that define
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` (``sessions report`` does).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from app.commands._common import store_path

if TYPE_CHECKING:
    from acquisition.store.sqlite import SessionStore

HELP = "list the sessions in the store, export them (BIDS-EEG or CSV), or back the store up"


def _store_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH", help="session store file (default: the one in the user data directory)")


def _plugins() -> dict[str, ModuleType]:
    import app.commands as pkg

    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("sessions_"):
            found[info.name.removeprefix("sessions_")] = importlib.import_module(f"app.commands.{info.name}")
    return found


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sessions_command", metavar="COMMAND", required=True)
    ls = sub.add_parser("list", help="list sessions: id, participant, protocol, source, times, status, trials")
    _store_argument(ls)
    ls.add_argument("--participants", nargs="+", metavar="ID", help="only these participants")
    ls.add_argument("--json", nargs="?", const="-", metavar="OUT", help="write JSON (to stdout if OUT is omitted)")
    ls.set_defaults(_sessions_run=_list)
    ex = sub.add_parser("export", help="export sessions as one BIDS-EEG dataset (EDF), or one session as CSV",
                        description="Export sessions as one BIDS-EEG dataset (several sessions get ses- levels), "
                                    "or one session as CSV files.")
    ex.add_argument("session_ids", nargs="?", type=_session_ids, metavar="ID[,ID...]",
                    help="session id(s) (see 'duygu sessions list')")
    ex.add_argument("--participant", metavar="ID", help="every session of this participant (instead of IDs)")
    ex.add_argument("--format", choices=("bids", "csv"), default="bids", help="bids (default) or csv (one session)")
    ex.add_argument("--out", required=True, metavar="DIR", help="new or empty output directory")
    _store_argument(ex)
    ex.add_argument("--power-line-hz", type=float, metavar="HZ",
                    help="mains frequency for the BIDS sidecar (default: the settings' notch_hz, 50)")
    ex.add_argument("--json", metavar="OUT", help="write a summary as JSON ('-' for stdout)")
    ex.set_defaults(_sessions_run=_export)
    bk = sub.add_parser("backup", help="write one self-contained copy of the store (safe while it is written)",
                        description="Copy the session store into one new file with SQLite's online backup: "
                                    "consistent even while a session records, and complete without the "
                                    "store's -wal file. Copy that file, not the live .sqlite.")
    _store_argument(bk)
    bk.add_argument("--out", required=True, metavar="FILE", help="the new file (must not exist)")
    bk.set_defaults(_sessions_run=_backup)
    for name, module in _plugins().items():
        sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sp)
        sp.set_defaults(_sessions_run=module.run, _sessions_store=getattr(module, "written_store", None))


def run(args: argparse.Namespace) -> int:
    return int(args._sessions_run(args) or 0)


def output_directories(args: argparse.Namespace) -> tuple[str, ...]:
    """Output flags of this command line that name a folder (``export --out DIR``)."""
    return ("--out",) if args.sessions_command == "export" else ()


def written_store(args: argparse.Namespace) -> Path | None:
    """The store a subcommand writes into (``import``), or ``None`` (the rest only read)."""
    hook = getattr(args, "_sessions_store", None)
    return hook(args) if hook is not None else None


def _open_readonly(args: argparse.Namespace) -> SessionStore:
    from acquisition.errors import StoreError
    from acquisition.store.sqlite import SessionStore

    path = store_path(args)
    if not path.exists():
        raise StoreError(f"store {path} does not exist (record a session first, or pass --store PATH)")
    return SessionStore(path, readonly=True)


def _list(args: argparse.Namespace) -> int:
    from app.commands._common import participant_ids, write_json

    path = store_path(args)
    if not path.exists() and not args.store:
        rows: list[dict[str, object]] = []
    else:
        with _open_readonly(args) as store:
            rows = [s.as_dict() for s in store.sessions(participant_ids(args.participants))]
    if args.json:
        write_json({"store": str(path), "sessions": rows}, args.json)
        return 0
    if not rows:
        print(f"no sessions in {path}")
        return 0
    header = ("id", "participant", "protocol", "source", "start", "end", "status", "trials", "eeg_s")
    table = [
        (str(r["id"]), str(r["participant"]), str(r["protocol"] or "-"), str(r["source"]),
         str(r["start"])[:19], str(r["end"] or "-")[:19], str(r["status"]),
         f"{r['labelled']}/{r['trials']}", f"{r['eeg_seconds']:.1f}")
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _session_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"session ids are integers separated by commas, got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no session id given")
    return ids


def _export(args: argparse.Namespace) -> int:
    from acquisition.errors import StoreError
    from acquisition.settings import load_settings
    from acquisition.store.export import export_bids, export_csv
    from app.commands._common import participant_ids, write_json

    if bool(args.session_ids) == bool(args.participant):
        raise StoreError("give session ids (1 or 1,2,3) or --participant ID, not both and not neither")
    with _open_readonly(args) as store:
        if args.participant:
            ids = [s.id for s in store.sessions(participant_ids([args.participant]))]
            if not ids:
                raise StoreError(f"participant {args.participant!r} has no sessions in {store_path(args)}")
        else:
            ids = list(args.session_ids)
        infos = [store.session(i) for i in ids]
        if args.format == "bids":
            settings = load_settings()
            line_hz = args.power_line_hz if args.power_line_hz is not None else settings.notch_hz
            out = export_bids(store, ids, args.out, power_line_hz=line_hz, authors=settings.authors)
        else:
            if len(ids) > 1:
                raise StoreError(f"a CSV export holds one session; {len(ids)} given (use --format bids, "
                                 "or one export per session)")
            out = export_csv(store, ids[0], args.out)
    for info in infos:
        print(f"exported session {info.id} ({info.status}, {info.eeg_seconds:.1f} s of EEG, "
              f"{info.n_trials} trials) as {args.format} to {out}")
    if args.json:
        sessions = [{"session_id": i.id, "participant": i.participant, "status": i.status,
                     "eeg_seconds": i.eeg_seconds, "trials": i.n_trials} for i in infos]
        summary: dict[str, object] = {"format": args.format, "out": str(out), "sessions": sessions}
        if len(infos) == 1:
            summary.update(sessions[0])
        write_json(summary, args.json)
    return 0


def _backup(args: argparse.Namespace) -> int:
    from acquisition.errors import StoreError
    from acquisition.store.sqlite import SessionStore

    path = store_path(args)
    if not path.exists():
        raise StoreError(f"store {path} does not exist (record a session first, or pass --store PATH)")
    out = Path(args.out)
    if out.exists():  # --force never replaces a backup either: a backup is a store
        raise StoreError(f"--out {str(out)!r} exists; a backup is always written to a new file")
    with SessionStore(path, readonly=True) as store:
        n = len(store.sessions())
        store.backup(out)
    print(f"backed up {n} session(s) of {path} to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
