"""``duygu simulate --emotivpro``: EmotivPRO's LSL streams from a simulated participant.

For rehearsing a study with no headset: start this where EmotivPRO would run, then
LabRecorder and Duygu as in the lab (``--source lsl:EmotivDataStream-EEG``); the
simulated participant feels each stimulus of the running Duygu session.
"""

from __future__ import annotations

import argparse
import sys

from app.commands._common import positive_float, write_json

HELP = "publish EmotivPRO's LSL streams (EEG, Contact-Quality, Motion) from a simulated participant"


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"contact levels are 14 integers 0-4 separated by commas, got {text!r}") from None
    if len(levels) != 14 or any(v not in range(5) for v in levels):
        raise argparse.ArgumentTypeError(f"contact levels are 14 integers 0-4 separated by commas, got {text!r}")
    return levels


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emotivpro", action="store_true", required=True,
                   help="imitate EmotivPRO's LSL outlet (the one simulation there is)")
    p.add_argument("--prefix", default="EmotivDataStream", metavar="NAME",
                   help="stream names NAME-EEG, NAME-Contact-Quality, NAME-Motion (default: EmotivDataStream)")
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after S s (default: until Ctrl-C)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated signals (default: 0)")
    p.add_argument("--participant", metavar="CODE", help="simulated participant (default: S<seed>)")
    p.add_argument("--rate", type=int, choices=(128, 256), default=128, help="EEG rate in Hz (default: 128)")
    p.add_argument("--dropouts", action="store_true", help="leave out 1-8 samples now and then (Counter jumps)")
    p.add_argument("--dropout-every", type=positive_float, default=20.0, metavar="S",
                   help="mean seconds between dropouts (default: 20)")
    p.add_argument("--outage-at", type=positive_float, metavar="S", help="stop the samples S s after the start ...")
    p.add_argument("--outage-s", type=positive_float, default=4.0, metavar="D", help="... for D s (default: 4)")
    p.add_argument("--follow-markers", default="duygu-markers", metavar="NAME",
                   help="Duygu's marker stream to follow ('none': stay neutral; default: duygu-markers)")
    p.add_argument("--protocol", metavar="FILE", help="protocol whose stimuli name their emotions (default: the "
                                                      "emotion word in each stimulus id)")
    p.add_argument("--contact", type=_levels, metavar="L1,...,L14",
                   help="fixed sensor contact levels 0-4 in EPOC order (default: from the simulation)")
    p.add_argument("--battery", type=float, default=100.0, metavar="PCT", help="battery at the start (default: 100)")
    p.add_argument("--overall", type=float, metavar="PCT", help="a fixed Overall figure (default: the mean level)")
    p.add_argument("--json", metavar="OUT", help="write what was published (dropouts, states) as JSON at the end")


def run(args: argparse.Namespace) -> int:
    from acquisition.sources.emotivpro_sim import EmotivProSimulator
    from acquisition.store.sqlite import validate_participant
    from app.commands._common import ending_signals

    if args.participant:
        validate_participant(args.participant)
    emotions = None
    if args.protocol:
        from acquisition.session.protocol import load_protocol

        emotions = {s.id: s.emotion for s in load_protocol(args.protocol).stimuli}
    follow = None if args.follow_markers.lower() == "none" else args.follow_markers
    sim = EmotivProSimulator(prefix=args.prefix, seed=args.seed, rate=args.rate, participant=args.participant,
                             dropouts=args.dropouts, dropout_every_s=args.dropout_every, outage_at_s=args.outage_at, outage_s=args.outage_s,
                             follow_markers=follow, emotions=emotions, contact=args.contact,
                             battery_percent=args.battery, overall=args.overall)

    def ready() -> None:
        print(f"simulating EmotivPRO: {', '.join(sim.stream_names)} (source_id {sim.source_id}, "
              f"{args.rate} Hz, participant {sim.simulator.participant})"
              + (f"; following {follow}" if follow else "") + "; Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        with ending_signals():
            summary = sim.run(args.seconds, on_ready=ready)
    except KeyboardInterrupt:
        sim.stop()
        summary = sim.summary
    print(f"sent {summary['samples_sent']} of {summary['samples_made']} EEG samples "
          f"({summary['dropped_samples']} left out in {len(summary['dropouts'])} dropout(s)"
          + (f", {summary['outage']['n']} in an outage" if summary["outage"] else "")
          + f"), {summary['markers_followed']} markers followed", file=sys.stderr)
    if args.json:
        write_json(summary, args.json)
    return 0
