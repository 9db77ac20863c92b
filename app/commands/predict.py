"""``duygu predict``: live predictions from a source with a trained model bundle."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from typing import Any

HELP = "predict the emotion live from a source with a .skops model; one JSON line per prediction"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from app.commands._common import add_source_argument, positive_float

    p.add_argument("--model", required=True, metavar="MODEL.skops", help="model bundle from duygu train")
    add_source_argument(p, default=None)
    p.add_argument("--seconds", type=positive_float, required=True, metavar="S",
                   help="seconds of signal to run for (predictions start once one window has arrived)")
    p.add_argument("--jsonl", metavar="OUT", default="-",
                   help="write JSON lines {t, probabilities, label, latency_ms, clean, reason} here (default: "
                        "stdout); clean is false when the window holds an artefact, reason says which; after "
                        "a gap nothing is predicted until a whole window of new data has arrived")
    p.add_argument("--hop", type=positive_float, default=0.25, metavar="S", help="seconds between predictions (default: 0.25)")
    p.add_argument("--smoothing", type=int, default=0, metavar="N",
                   help="average the probabilities of the last N predictions (default: off)")
    p.add_argument("--sim-state", metavar="STATE",
                   help="simulated source only: hidden state (happy, sad, relaxing, tense, neutral)")


def run(args: argparse.Namespace) -> int:
    from acquisition.errors import SourceError
    from acquisition.sources.spec import open_source
    from models.bundle import load_bundle

    source = open_source(args.source)
    bundle = load_bundle(args.model, expect_channels=tuple(source.channels), expect_sfreq_hz=float(source.sfreq_hz))
    if args.sim_state:
        if not hasattr(source, "set_state"):
            raise SourceError(f"--sim-state applies to the simulated source only, got {args.source!r}")
        try:
            source.set_state(args.sim_state)
        except ValueError as exc:
            raise SourceError(f"--sim-state: {exc}") from None
    from acquisition.errors import DataError
    from acquisition.settings import atomic_output

    if args.jsonl == "-":
        error = _predict(args, source, bundle, sys.stdout)
    else:
        with atomic_output(args.jsonl) as tmp, open(tmp, "w", encoding="utf-8") as out:
            error = _predict(args, source, bundle, out)  # what was predicted is kept, even after an error
    if error:
        raise DataError(f"live prediction stopped: {error}")
    return 0


def _predict(args: argparse.Namespace, source: Any, bundle: Any, out: Any) -> str:
    """Predict into ``out``; return why the predictor stopped early ("" if it did not)."""
    from app.commands._common import ending_signals
    from models.live import LivePredictor

    pending: queue.Queue[Any] = queue.Queue()
    latencies: list[float] = []
    counts = {"written": 0, "unclean": 0}
    error = ""

    def write(prediction: Any) -> None:
        out.write(json.dumps(prediction.as_dict()) + "\n")
        out.flush()
        latencies.append(prediction.latency_ms)
        counts["written"] += 1
        counts["unclean"] += not prediction.clean

    with source:
        predictor = LivePredictor(bundle, source, hop_s=args.hop, smoothing=args.smoothing)
        if predictor.domain_warning:
            print(f"duygu: warning: {predictor.domain_warning}", file=sys.stderr)
        predictor.add_listener(pending.put)
        target = source.buffer.total + round(args.seconds * source.sfreq_hz)
        deadline = time.monotonic() + 2 * args.seconds + 10.0
        predictor.start()
        try:
            with ending_signals():  # Ctrl-C, SIGTERM, SIGHUP: stop and keep what was predicted
                while source.buffer.total < target and time.monotonic() < deadline and predictor.running:
                    try:
                        write(pending.get(timeout=0.2))
                    except queue.Empty:
                        continue
        except KeyboardInterrupt:
            print("duygu: prediction stopped early", file=sys.stderr)
        finally:
            try:
                predictor.stop()
            except Exception as exc:  # the predictor's own error (a bad window, a model that raises)
                error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        while not pending.empty():
            write(pending.get_nowait())
        stats = source.stats()
    p99 = sorted(latencies)[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    print(f"{counts['written']} predictions ({counts['unclean']} not clean) from {args.source} "
          f"({stats['received']} samples, {stats['lost']} lost, {stats['gaps']} gap(s)); "
          f"latency p99 {p99:.2f} ms", file=sys.stderr)
    return error
