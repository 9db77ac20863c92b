"""``duygu gui`` (also plain ``duygu``): the desktop app."""

from __future__ import annotations

import argparse

HELP = "open the desktop app (live signals, sessions, training, live prediction, replay)"

#: SIGTERM/SIGHUP keep their default action: raised as KeyboardInterrupt they would surface
#: inside whichever Qt slot ran next
ENDING_SIGNALS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source", metavar="SPEC", default=None,
        help="source connected at start: simulated[:SEED], lsl:NAME, lsl:type=EEG, brainflow:BOARD_ID, "
        "replay:PATH[@SPEED] (default: the settings' default_source, simulated)")
    p.add_argument("--no-connect", action="store_true", help="start without connecting a source")
    p.add_argument("--protocol", metavar="FILE", help="protocol preselected in the session view "
                   "(default: assets/demo/protocol.toml)")
    p.add_argument("--store", metavar="PATH", help="session store (default: <data dir>/duygu.sqlite)")
    p.add_argument("--labels-fullscreen", action="store_true",
                   help="open the participant's label screen full screen (on the last monitor)")
    p.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from app.gui import main_gui

    return main_gui(
        source=args.source, connect=not args.no_connect, protocol=args.protocol, store=args.store,
        labels_fullscreen=args.labels_fullscreen, quit_after_s=args.quit_after,
    )
