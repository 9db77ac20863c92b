"""``duygu sources``: LSL streams visible now and BrainFlow board ids."""

from __future__ import annotations

import argparse

from app.commands._common import positive_float, write_json

HELP = "list the LSL streams visible now (with their EPOC layout) and the BrainFlow board ids"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="OUT", help="write the list as JSON ('-' for stdout)")
    p.add_argument("--timeout", type=positive_float, default=2.0, metavar="S",
                   help="seconds to listen for LSL streams (default: 2)")


def brainflow_boards() -> list[dict[str, object]]:
    """BrainFlow board ids as ``{"name", "id"}`` (BrainFlow has no Emotiv board)."""
    from brainflow.board_shim import BoardIds

    return [{"name": b.name, "id": int(b.value)} for b in sorted(BoardIds, key=lambda b: b.value)]


def run(args: argparse.Namespace) -> int:
    from acquisition.sources.lsl import list_streams

    streams = list_streams(timeout_s=args.timeout)
    boards = brainflow_boards()
    report = {"lsl_streams": streams, "brainflow_boards": boards}
    if args.json:
        write_json(report, args.json)
        if args.json == "-":
            return 0
    print(f"LSL streams visible within {args.timeout:g} s: {len(streams)}")
    if streams:
        print(f"  {'name':<32} {'type':<10} {'ch':>4} {'rate':>7}  {'source_id':<20} {'EPOC':<5} layout / reason")
    for s in streams:
        rate = f"{s['sfreq_hz']:g}" if s["sfreq_hz"] else "irreg."
        detail = s["layout"] if s["usable"] else s["reason"]
        print(f"  {s['name']!s:<32} {s['type']!s:<10} {s['channel_count']:>4} {rate:>7}  "
              f"{s['source_id']!s:<20} {'yes' if s['epoc_labels'] else 'no':<5} {detail}")
    usable = [s for s in streams if s["usable"]]
    if usable:
        print(f"  use one with --source {usable[0]['spec']}  (or --source lsl:type=EEG)")
    print(f"BrainFlow board ids ({len(boards)}; none is an Emotiv headset):")
    line = "  "
    for b in boards:
        item = f"{b['name']}={b['id']}  "
        if len(line) + len(item) > 100:
            print(line.rstrip())
            line = "  "
        line += item
    print(line.rstrip())
    return 0
