"""``duygu sessions report ID --out FILE.html``: intended, perceived, reported and decoded emotion."""

from __future__ import annotations

import argparse
import sys

HELP = "per-trial intended/perceived/reported/decoded emotion of a session, with agreement matrices (HTML)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("session_id", type=int, metavar="ID", help="session id (see 'duygu sessions list')")
    p.add_argument("--out", required=True, metavar="FILE.html", help="where to write the self-contained HTML report")
    p.add_argument("--store", metavar="PATH", help="session store file (default: the one in the user data directory)")
    p.add_argument("--eeg-model", metavar="MODEL.skops",
                   help="EEG model bundle for the decoded emotion (train it on OTHER sessions)")
    p.add_argument("--music-model", metavar="PATH", help="music model ('duygu music train') for the perceived emotion")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from acquisition.errors import DataError
    from app.commands._common import write_json
    from app.commands.sessions import _open_readonly
    from models.session_report import build_session_report, write_html

    if Path(args.out).is_dir():
        raise DataError(f"--out must be an HTML file, got the folder {args.out}")
    with _open_readonly(args) as store:
        report = build_session_report(store, args.session_id, eeg_model=args.eeg_model,
                                      music_model=args.music_model)
    try:
        path = write_html(report, args.out)
    except OSError as exc:
        raise DataError(f"cannot write the report to {args.out}: {exc.strerror or exc}") from None
    out = sys.stderr if args.json == "-" else sys.stdout
    summary = ", ".join(
        f"{a.rows}/{a.columns} {'-' if a.rate is None else f'{100 * a.rate:.0f}%'}" for a in report.agreements)
    print(f"session {report.session['id']}: {len(report.trials)} trials, sources {', '.join(report.sources)}"
          f"{'; agreement ' + summary if summary else ''}; wrote {path}", file=out)
    for note in (*[f"{k} absent: {v}" for k, v in report.absent.items()], *report.notes):
        print(f"  {note}", file=out)
    if args.json:
        write_json(report.as_json(), args.json)
    return 0
