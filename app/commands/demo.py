"""``duygu demo --headless``: the whole loop with no screen and no headset.

Simulated EPOC+ -> the demo protocol (16 synthetic stimuli), time-scaled, automatic
labels -> session in the store -> features and a ``grouped`` evaluation -> a trained
model -> live predictions on the simulated headset for ``--predict-s`` seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from app.commands._common import positive_float, write_json

HELP = "the whole loop without a screen: simulated headset, demo session, training, live predictions"

DEMO_PROTOCOL = Path(__file__).resolve().parents[2] / "assets" / "demo" / "protocol.toml"
DEMO_CLASSIFIERS = ("logreg", "lda")
LIVE_STATES = ("happy", "sad", "relaxing", "tense")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no window: print a summary (the GUI is `duygu gui`)")
    p.add_argument("--json", metavar="OUT", help="write the summary as JSON ('-' for stdout)")
    p.add_argument("--protocol", default=str(DEMO_PROTOCOL), metavar="FILE", help="protocol (default: the demo's)")
    p.add_argument("--time-scale", type=positive_float, default=24.0, metavar="X",
                   help="session X times faster; the simulated headset runs X times faster too, so every "
                        "trial still holds 30 s of simulated EEG (default: 24)")
    p.add_argument("--predict-s", type=positive_float, default=20.0, metavar="S",
                   help="seconds of live prediction (default: 20)")
    p.add_argument("--classifier", default="logreg", metavar="NAME",
                   help="classifier trained for the live part (default: logreg)")
    p.add_argument("--store", metavar="PATH", help="session store (default: the user data directory)")
    p.add_argument("--participant", default="DEMO01", metavar="ID", help="participant code (default: DEMO01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated participant (default: 0)")
    p.add_argument("--no-audio", action="store_true", help="do not play the stimuli")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from acquisition.errors import DuyguError
    from acquisition.session.protocol import load_protocol, preflight
    from acquisition.session.runner import SessionRunner
    from acquisition.settings import load_settings
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.sqlite import SessionStore
    from models.bundle import train_bundle
    from models.datasets import from_trials
    from models.evaluation import evaluate
    from models.live import LivePredictor
    from models.registry import get_spec

    if not args.headless:
        raise DuyguError("demo needs --headless on the command line; the interactive demo is `duygu gui`")
    started = time.perf_counter()
    classifier = get_spec(args.classifier).name
    protocol = load_protocol(args.protocol)
    store_path = Path(args.store) if args.store else load_settings().store_path
    preflight(protocol, store_dir=store_path)

    player = None
    audio_note = "audio disabled (--no-audio)"
    if not args.no_audio:
        from app.player import AudioError, StimulusPlayer, check_output

        try:
            audio_note = f"audio: {check_output()}"
            player = StimulusPlayer()
        except AudioError as exc:
            audio_note = f"no audio output, running silently ({exc})"
    _say(f"demo: {len(protocol.stimuli)} synthetic stimuli, time scale {args.time_scale:g}; {audio_note}")

    store = SessionStore(store_path)
    scale = float(args.time_scale)
    with SimulatedEpocSource(seed=args.seed, speed=scale) as source:
        runner = SessionRunner(protocol, source, store, args.participant, player=player, labels="auto",
                               time_scale=scale, source_spec=f"simulated:{args.seed}")
        runner.add_listener(lambda e: _say(f"  trial {(e.trial or 0) + 1}/{e.n_trials} {e.stimulus_id}")
                            if e.kind == "trial_start" else None)
        try:
            result = runner.run()
        except DuyguError:
            if player is None:
                raise
            _say("demo: audio output failed, running silently")
            result = SessionRunner(protocol, source, store, args.participant, labels="auto", time_scale=scale,
                                   source_spec=f"simulated:{args.seed}").run()
    session_s = time.perf_counter() - started
    _say(f"demo: session {result.session_id} {result.status}, {len(result.trials)} trials in {session_s:.0f} s")

    # the live headset starts now, so its buffer fills while the model trains
    live_source = SimulatedEpocSource(seed=args.seed)
    live_source.set_state(LIVE_STATES[0])
    live_source.connect()
    predictions: list[Any] = []
    live_correct: list[bool] = []
    try:
        trials = store.labelled_trials(session_ids=[result.session_id])
        dataset = from_trials(trials, "default")
        evaluation = evaluate(dataset, protocol="grouped",
                              classifiers=list(dict.fromkeys([classifier, *DEMO_CLASSIFIERS])))
        bundle = train_bundle(dataset, classifier)
        _say(f"demo: grouped evaluation on {len(dataset.y)} windows of {len(trials)} trials, trained {classifier}")

        # one feature window (and the filter's warm-up) before the clock starts
        window_samples = LivePredictor(bundle, live_source).extractor.window_samples
        live_source.wait_for_samples(window_samples + round(2.0 * live_source.sfreq_hz), 30.0)
        predictor = LivePredictor(bundle, live_source, hop_s=0.25)

        def collect(prediction: Any) -> None:
            predictions.append(prediction)
            live_correct.append(prediction.label == live_source.state)

        predictor.add_listener(collect)
        predictor.start()
        stop = live_source.buffer.total + round(args.predict_s * live_source.sfreq_hz)
        per_state = max(1, round(args.predict_s / len(LIVE_STATES) * live_source.sfreq_hz))
        next_change = live_source.buffer.total + per_state
        k = 0
        while next_change < stop:
            live_source.buffer.wait_for(next_change, args.predict_s + 5)
            k += 1
            live_source.set_state(LIVE_STATES[k % len(LIVE_STATES)])
            next_change += per_state
        live_source.buffer.wait_for(stop, args.predict_s + 5)
        try:
            predictor.stop()  # re-raises an error of the prediction thread
        except DuyguError:
            raise
        except Exception as exc:
            raise DuyguError(f"live prediction failed: {exc}") from exc
    finally:
        live_source.disconnect()
    latencies = [p.latency_ms for p in predictions]
    median_latency_ms = float(np.median(latencies)) if latencies else None
    grouped = {r["classifier"]: r["accuracy"] for r in evaluation.get("results", [])
               if r.get("split") == "grouped"}
    summary = {
        "session_id": result.session_id,
        "store": str(store.path),
        "status": result.status,
        "trials": len(result.trials),
        "labels": [t.label for t in result.trials],
        "windows": len(dataset.y),
        "evaluation": evaluation,
        "classifier": classifier,
        "predictions": len(predictions),
        "live_agreement": float(np.mean(live_correct)) if live_correct else None,
        "median_latency_ms": median_latency_ms,
        "audio": audio_note,
        "simulated": True,
        "seconds": round(time.perf_counter() - started, 1),
    }
    store.close()
    out = print if args.json != "-" else _say  # keep stdout pure JSON with --json -
    out(f"session {result.session_id}: {len(result.trials)} trials ({result.status}), "
        f"{len(dataset.y)} windows, chance {evaluation.get('chance', float('nan')):.2f}")
    for name, acc in grouped.items():
        out(f"  grouped accuracy {name}: {acc:.2f}")
    agreement = summary["live_agreement"]
    out(f"live: {len(predictions)} predictions in {args.predict_s:g} s, median latency "
        f"{median_latency_ms if median_latency_ms is not None else float('nan'):.1f} ms, agreement with the "
        f"simulated state {agreement if agreement is not None else float('nan'):.2f}")
    out(f"{audio_note}; everything here is simulated (docs/PROTOCOL.md); {summary['seconds']:.0f} s in all")
    if args.json:
        write_json(summary, args.json)
    return 0
