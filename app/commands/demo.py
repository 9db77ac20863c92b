"""``duygu demo --headless``: the whole loop with no screen and no headset, with honest numbers.

Simulated participant(s) wearing the simulated EPOC+ -> the demo protocol (16 synthetic
stimuli), time-scaled, automatic labels -> sessions in the store -> a ``grouped``
evaluation with its leakage gap (random - grouped) and permutation chance (and ``loso``
across a cohort) -> a trained model -> live prediction on the same participant, states
of 15 s, scored only on windows that lie wholly inside one state.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from app.commands._common import positive_float, store_path, write_json

HELP = "the whole loop without a screen: simulated participant, demo session, evaluation, live predictions"

DEMO_PROTOCOL = Path(__file__).resolve().parents[2] / "assets" / "demo" / "protocol.toml"
DEMO_CLASSIFIERS = ("logreg", "lda")
LIVE_STATES = ("happy", "sad", "relaxing", "tense")
SETTLE_S = 1.0
"""A state is approached smoothly (time constant 0.5 s): windows starting within this
long after a change are not scored."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no window: print a summary (the GUI is `duygu gui`)")
    p.add_argument("--json", metavar="OUT", help="write the summary as JSON ('-' for stdout)")
    p.add_argument("--protocol", default=str(DEMO_PROTOCOL), metavar="FILE", help="protocol (default: the demo's)")
    p.add_argument("--time-scale", type=positive_float, default=24.0, metavar="X",
                   help="session X times faster; the simulated headset runs X times faster too, so every "
                        "trial still holds 30 s of simulated EEG (default: 24)")
    p.add_argument("--participants", type=int, default=1, metavar="N",
                   help="simulated participants DEMO01..DEMO<N>, one session each; N >= 2 adds a "
                        "leave-one-subject-out evaluation (default: 1)")
    p.add_argument("--state-s", type=positive_float, default=15.0, metavar="S",
                   help="seconds of simulated EEG per live state (default: 15)")
    p.add_argument("--live-states", type=int, default=32, metavar="K",
                   help="live states, cycling happy, sad, relaxing, tense (default: 32: each eight times; "
                        "each state is an episode of its own, so fewer make the agreement noisier)")
    p.add_argument("--live-speed", type=positive_float, default=16.0, metavar="X",
                   help="the live headset runs X times faster than real time (default: 16)")
    p.add_argument("--permutations", type=int, default=50, metavar="N",
                   help="label permutations for the chance level (default: 50)")
    p.add_argument("--classifier", default="logreg", metavar="NAME",
                   help="classifier trained for the live part (default: logreg)")
    p.add_argument("--store", metavar="PATH", help="session store (default: the user data directory)")
    p.add_argument("--participant", default="DEMO01", metavar="ID",
                   help="participant code of a one-participant demo (default: DEMO01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated signals (default: 0)")
    p.add_argument("--no-audio", action="store_true", help="do not play the stimuli")


def written_store(args: argparse.Namespace) -> Path:
    """The store the demo's sessions go to (``--store``, or the default one)."""
    return store_path(args)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from acquisition.errors import DuyguError
    from acquisition.session.protocol import load_protocol, preflight
    from acquisition.settings import load_settings
    from acquisition.store.sqlite import SessionStore, validate_participant
    from models.registry import get_spec

    if not args.headless:
        raise DuyguError("demo needs --headless on the command line; the interactive demo is `duygu gui`")
    if args.participants < 1:
        raise DuyguError(f"--participants must be >= 1, got {args.participants}")
    if args.live_states < 1:
        raise DuyguError(f"--live-states must be >= 1, got {args.live_states}")
    started = time.perf_counter()
    classifier = get_spec(args.classifier).name
    protocol = load_protocol(args.protocol)
    settings = load_settings()
    store_file = written_store(args)
    participants = ([args.participant] if args.participants == 1
                    else [f"DEMO{k:02d}" for k in range(1, args.participants + 1)])
    for code in participants:
        validate_participant(code, settings.participant_pattern)
    preflight(protocol, store_dir=store_file)

    player, audio_note = _player(args.no_audio)
    _say(f"demo: {len(protocol.stimuli)} synthetic stimuli, time scale {args.time_scale:g}, "
         f"{len(participants)} simulated participant(s); {audio_note}")
    store = SessionStore(store_file)
    try:
        results = [_session(args, protocol, store, code, player) for code in participants]
        live = _evaluate_train_and_predict(args, store, results, classifier, participants[0])
    finally:
        store.close()
    summary = {
        "session_id": results[0].session_id,
        "session_ids": [r.session_id for r in results],
        "participants": participants,
        "store": str(store_file),
        "status": results[0].status,
        "trials": sum(len(r.trials) for r in results),
        "labels": [t.label for r in results for t in r.trials],
        **live,
        "audio": audio_note,
        "simulated": True,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _print_summary(summary, args)
    if args.json:
        write_json(summary, args.json)
    return 0


def _player(no_audio: bool) -> tuple[Any, str]:
    if no_audio:
        return None, "audio disabled (--no-audio)"
    from app.player import AudioError, StimulusPlayer, check_output

    try:
        note = f"audio: {check_output()}"
        return StimulusPlayer(), note
    except AudioError as exc:
        return None, f"no audio output, running silently ({exc})"


def _session(args: argparse.Namespace, protocol: Any, store: Any, code: str, player: Any) -> Any:
    """One time-scaled session of simulated participant ``code``."""
    from acquisition.errors import DuyguError
    from acquisition.session.runner import SessionRunner
    from acquisition.sources.simulated import SimulatedEpocSource

    scale = float(args.time_scale)
    spec = f"simulated:{args.seed}?participant={code}"
    t0 = time.perf_counter()
    with SimulatedEpocSource(seed=args.seed, speed=scale, participant=code) as source:
        runner = SessionRunner(protocol, source, store, code, player=player, labels="auto", time_scale=scale,
                               source_spec=spec, markers_wait_s=0.0)
        runner.add_listener(lambda e: _say(f"  {code} trial {(e.trial or 0) + 1}/{e.n_trials} {e.stimulus_id}")
                            if e.kind == "trial_start" else None)
        try:
            result = runner.run()
        except DuyguError:
            if player is None:
                raise
            _say("demo: audio output failed, running silently")
            result = SessionRunner(protocol, source, store, code, labels="auto", time_scale=scale,
                                   source_spec=spec, markers_wait_s=0.0).run()
    _say(f"demo: {code}: session {result.session_id} {result.status}, {len(result.trials)} trials in "
         f"{time.perf_counter() - t0:.0f} s")
    return result


def _evaluate_train_and_predict(args: argparse.Namespace, store: Any, results: list[Any], classifier: str,
                                live_participant: str) -> dict[str, Any]:
    import numpy as np

    from acquisition.errors import DuyguError
    from acquisition.sources.simulated import SimulatedEpocSource
    from models.bundle import train_bundle
    from models.datasets import from_trials
    from models.evaluation import evaluate
    from models.live import LivePredictor

    # the live headset starts now, so its buffer fills while the model trains; the same
    # participant, another day (another seed of the signal)
    live_source = SimulatedEpocSource(seed=args.seed + 1000, speed=args.live_speed, participant=live_participant)
    live_source.connect()
    predictions: list[Any] = []
    try:
        trials = store.labelled_trials(session_ids=[r.session_id for r in results])
        dataset = from_trials(trials, "default")
        names = list(dict.fromkeys([classifier, *DEMO_CLASSIFIERS]))
        evaluation = evaluate(dataset, protocol="grouped", classifiers=names, n_permutations=args.permutations)
        loso = evaluate(dataset, protocol="loso", classifiers=names) if len(results) > 1 else None
        bundle = train_bundle(dataset, classifier)
        _say(f"demo: grouped evaluation on {len(dataset.y)} windows of {len(trials)} trials, trained {classifier}")

        window = LivePredictor(bundle, live_source).extractor.window_samples
        # one window and the filter's warm-up before the first scored state
        live_source.wait_for_samples(window + round(2.0 * live_source.sfreq_hz), 60.0)
        predictor = LivePredictor(bundle, live_source, hop_s=0.25)
        predictor.add_listener(predictions.append)
        per_state = round(args.state_s * live_source.sfreq_hz)
        live_source.set_state(LIVE_STATES[0])
        predictor.start()
        start = live_source.buffer.total
        for k in range(1, args.live_states + 1):
            live_source.buffer.wait_for(start + k * per_state, args.state_s / args.live_speed * 4 + 30)
            if k < args.live_states:
                live_source.set_state(LIVE_STATES[k % len(LIVE_STATES)])
        try:
            predictor.stop()  # re-raises an error of the prediction thread
        except DuyguError:
            raise
        except Exception as exc:
            raise DuyguError(f"live prediction failed: {exc}") from exc
        scored = _score_live(predictions, live_source, window)
    finally:
        live_source.disconnect()
    latencies = [p.latency_ms for p in predictions]
    return {
        "windows": len(dataset.y),
        "evaluation": evaluation,
        **({"loso": loso} if loso is not None else {}),
        "classifier": classifier,
        "predictions": len(predictions),
        **scored,
        "median_latency_ms": float(np.median(latencies)) if latencies else None,
    }


def _score_live(predictions: list[Any], source: Any, window: int) -> dict[str, Any]:
    """Agreement of live predictions with the simulated state: ``live_agreement`` over
    clean windows wholly inside one state (after :data:`SETTLE_S`), ``live_agreement_raw``
    over every prediction scored against the state at the window's end, and the per-state
    confusion of the scored windows."""
    import numpy as np

    chunk = source.buffer.since(0)
    times = chunk.timestamps
    history = source.simulator.state_history  # (first sample index, state); no dropouts here
    starts = np.array([i for i, _ in history])
    states = [s for _, s in history]
    settle = round(SETTLE_S * source.sfreq_hz)
    confusion: dict[str, dict[str, int]] = {s: {} for s in LIVE_STATES}
    scored: list[bool] = []
    raw: list[bool] = []
    for p in predictions:
        end = int(np.searchsorted(times, p.t, side="right")) - 1 + chunk.first_index
        if end < 0:
            continue
        k = int(np.searchsorted(starts, end, side="right")) - 1
        truth = states[k]
        raw.append(p.label == truth)
        first = end - window + 1
        if truth in confusion and p.clean and first >= starts[k] + settle:
            scored.append(p.label == truth)
            confusion[truth][p.label] = confusion[truth].get(p.label, 0) + 1
    return {
        "live_agreement": float(np.mean(scored)) if scored else None,
        "live_agreement_raw": float(np.mean(raw)) if raw else None,
        "live_scored_windows": len(scored),
        "live_confusion": confusion,
    }


def _print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    out = print if args.json != "-" else _say  # keep stdout pure JSON with --json -
    evaluation = summary["evaluation"]
    grouped = {r["classifier"]: r["accuracy"] for r in evaluation["results"] if r["split"] == "grouped"}
    random_split = {r["classifier"]: r["accuracy"] for r in evaluation["results"] if r["split"] == "random"}
    out(f"sessions {', '.join(map(str, summary['session_ids']))}: {summary['trials']} trials, "
        f"{summary['windows']} windows; chance {evaluation['chance']:.2f} "
        f"({evaluation['permutation']['n_permutations']} label permutations)")
    for name, acc in grouped.items():
        leak = random_split.get(name)
        out(f"  {name}: grouped accuracy {acc:.2f}" + (f", random split {leak:.2f} (leaks trials)" if leak else ""))
    if evaluation.get("leakage_gap") is not None:
        out(f"  leakage gap (random - grouped): {evaluation['leakage_gap']:+.2f}")
    if "loso" in summary:
        for r in summary["loso"]["results"]:
            out(f"  {r['classifier']}: leave-one-subject-out accuracy {r['accuracy']:.2f}")

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    out(f"live: {summary['predictions']} predictions, median latency {num(summary['median_latency_ms'])} ms; "
        f"agreement with the simulated state {num(summary['live_agreement'])} on "
        f"{summary['live_scored_windows']} windows wholly inside one state "
        f"({num(summary['live_agreement_raw'])} over every window)")
    out(f"{summary['audio']}; everything here is simulated (docs/SOURCES.md); {summary['seconds']:.0f} s in all")
