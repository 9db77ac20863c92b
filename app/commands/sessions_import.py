"""``duygu sessions import FILE.xdf --participant ID``: a LabRecorder recording as a session."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make a stored session from a LabRecorder XDF file (its EEG stream and a marker stream)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("xdf", metavar="FILE.xdf", help="the XDF file LabRecorder wrote")
    p.add_argument("--participant", required=True, metavar="ID",
                   help="pseudonymous participant code (letters then digits, e.g. P01)")
    p.add_argument("--store", metavar="PATH", help="session store file (default: the one in the user data directory)")
    p.add_argument("--stream", metavar="NAME", help="the EEG stream (default: the first EEG stream with EPOC labels)")
    p.add_argument("--markers", metavar="NAME", help="the marker stream (default: the first string stream)")
    p.add_argument("--mapping", metavar="FILE.toml",
                   help="marker vocabulary other than Duygu's stim_on:/stim_off:/label: words (docs/SOURCES.md)")
    p.add_argument("--json", metavar="OUT", help="write what was imported as JSON ('-' for stdout)")


def written_store(args: argparse.Namespace) -> Path:
    """The store the imported session goes to (``--store``, or the default one)."""
    from app.commands._common import store_path

    return store_path(args)


def run(args: argparse.Namespace) -> int:
    from acquisition.session.importer import MarkerVocabulary, import_xdf
    from acquisition.settings import load_settings
    from acquisition.store.sqlite import SessionStore, validate_participant
    from app.commands._common import store_path, write_json

    settings = load_settings()
    validate_participant(args.participant, settings.participant_pattern)
    vocabulary = MarkerVocabulary.load(args.mapping) if args.mapping else None
    with SessionStore(store_path(args), participant_pattern=settings.participant_pattern) as store:
        result = import_xdf(args.xdf, store, args.participant, stream=args.stream, marker_stream=args.markers,
                            vocabulary=vocabulary)
    print(f"imported {args.xdf} as session {result.session_id}: {result.samples} samples "
          f"({result.samples / 128:.1f} s, {result.gaps} gap(s)) from {result.eeg_stream!r}, {result.markers} "
          f"markers from {result.marker_stream!r}, {result.trials} trials ({result.labelled} labelled"
          + (f", {result.interrupted} interrupted by gaps" if result.interrupted else "") + ")")
    if args.json:
        write_json(result.as_dict(), args.json)
    return 0
