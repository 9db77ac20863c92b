"""``duygu session run``: run a listening session from a protocol file."""

from __future__ import annotations

import argparse
import queue
import sys
from pathlib import Path
from typing import Any

from app.commands._common import add_source_argument, positive_float, store_path, write_json

HELP = "run a listening session: protocol file -> music, markers and labelled EEG in the store"


def _say(text: str) -> None:
    """One line to stderr in one write: event threads and the main thread never interleave."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="session_command", metavar="COMMAND", required=True)
    r = sub.add_parser("run", help="run a session (prints the session id)",
                       description="Run a listening session: baseline, then stimulus -> silence -> label "
                                   "for every stimulus of the protocol. Prints the session id.")
    r.add_argument("--protocol", required=True, metavar="FILE", help="protocol TOML file (docs/PROTOCOL.md)")
    r.add_argument("--participant", required=True, metavar="ID",
                   help="pseudonymous participant code: letters then digits, e.g. P01 (the settings' participant_pattern)")
    add_source_argument(r)
    r.add_argument("--labels", choices=("auto", "prompt"), default="prompt",
                   help="prompt: ask for the felt emotion after each stimulus (default); "
                        "auto: use each stimulus's intended emotion (demos, tests)")
    r.add_argument("--time-scale", type=positive_float, default=1.0, metavar="X",
                   help="divide every duration by X (a simulated source also runs X times faster, "
                        "so each trial still holds the protocol's seconds of EEG)")
    r.add_argument("--store", metavar="PATH", help="session store (default: the user data directory)")
    r.add_argument("--seed", type=int, metavar="N", help="stimulus order seed (default: from the participant id)")
    r.add_argument("--no-audio", action="store_true", help="run silently (markers mark the intended onsets)")
    r.add_argument("--audio-device", metavar="NAME", help="audio output device (sounddevice name or index)")
    r.add_argument("--markers", default="duygu-markers", metavar="NAME",
                   help="name of the LSL marker stream (type Markers; default: duygu-markers)")
    r.add_argument("--no-markers", action="store_true", help="do not publish markers on LSL (still stored)")
    r.add_argument("--markers-wait-s", type=float, default=5.0, metavar="S",
                   help="the first marker waits up to S s for a recorder (LabRecorder, EmotivPRO) to connect "
                        "to the marker stream (default 5; 0 = do not wait)")
    r.add_argument("--emotivpro-markers", action="store_true",
                   help="also publish NAME-emotivpro: integer marker codes (1 channel MarkerValue) that "
                        "EmotivPRO's LSL inlet records (the code table is stored with the session)")
    r.add_argument("--max-outage-s", type=positive_float, metavar="S",
                   help="a fault (source lost, store not writable, audio output gone, stimulus unreadable) "
                        "lasting longer than S seconds ends the session as failed (default: the settings' "
                        "max_outage_s, 120 s); shorter faults pause it and it resumes by itself")
    r.add_argument("--json", metavar="OUT", help="write the session summary as JSON ('-' for stdout)")


def written_store(args: argparse.Namespace) -> Path | None:
    """The store ``session run`` records into (``--store``, or the default one)."""
    if args.session_command != "run":
        return None
    return store_path(args)


def _device(text: str | None) -> str | int | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def build_session(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, Any]:
    """Load, preflight and build everything a session needs (shared with ``demo``).

    Returns ``(protocol, source, store, player, markers)``; nothing is started.
    """
    from acquisition.session.markers import MarkerOutlet
    from acquisition.session.protocol import load_protocol, preflight
    from acquisition.settings import load_settings
    from acquisition.sources.spec import open_source, parse_source_spec
    from acquisition.store.sqlite import SessionStore, validate_participant

    settings = load_settings()
    protocol = load_protocol(args.protocol)
    validate_participant(args.participant, settings.participant_pattern)
    spec = parse_source_spec(args.source)
    store_file = store_path(args)
    audio_check = None
    if not args.no_audio:
        from app.player import check_output

        device = _device(args.audio_device)

        def audio_check() -> str:
            return check_output(device)

    preflight(protocol, audio_check=audio_check, store_dir=store_file)
    player = None
    if not args.no_audio:
        from app.player import StimulusPlayer

        player = StimulusPlayer(_device(args.audio_device))
    store = SessionStore(store_file, participant_pattern=settings.participant_pattern)
    try:
        kwargs: dict[str, Any] = {"speed": args.time_scale} if spec.kind == "simulated" else {}
        source = open_source(spec, **kwargs)
        markers = None if args.no_markers else MarkerOutlet(args.markers, emotivpro=args.emotivpro_markers)
    except BaseException:
        store.discard_if_unused()  # a store made for this session only, and never written
        raise
    return protocol, source, store, player, markers


def run(args: argparse.Namespace) -> int:
    protocol, source, store, player, markers = build_session(args)
    try:
        return _run(args, protocol, source, store, player, markers)
    except BaseException:  # refused before it began (no such stream…): a store made for it goes
        store.discard_if_unused()  # (one holding anything, or there before, is always kept)
        raise


def _run(args: argparse.Namespace, protocol: Any, source: Any, store: Any, player: Any, markers: Any) -> int:
    from acquisition.errors import ProtocolError
    from acquisition.session.runner import RunnerEvent, SessionRunner
    from acquisition.settings import load_settings
    from app.commands._common import ending_signals

    max_outage_s = args.max_outage_s or load_settings().max_outage_s
    prompts: queue.Queue[RunnerEvent | None] = queue.Queue()

    def show(event: RunnerEvent) -> None:
        if event.kind == "trial_start":
            _say(f"trial {(event.trial or 0) + 1}/{event.n_trials}: {event.stimulus_id}")
        elif event.kind == "fault":
            _say(f"session paused: {event.message} (it resumes by itself when this clears; "
               f"fails after {max_outage_s:g} s)")
        elif event.kind == "paused" and event.message.startswith("cannot resume"):
            _say(f"session paused: {event.message}")
        elif event.kind in ("contact", "quality_error"):
            _say(event.message)
        elif event.kind == "fault_cleared":
            _say(event.message)  # e.g. "source fault cleared" (a fault that cleared before a pause
            # took hold is followed by no "session resumed")
        elif event.kind == "resumed":
            _say("session resumed")
        elif event.kind == "trial_interrupted":
            _say(f"trial {(event.trial or 0) + 1} interrupted ({event.message})"
                 + (": it will be repeated" if event.repeated else ""))
        elif event.kind == "label_prompt":
            prompts.put(event)
        elif event.kind == "session_end":
            prompts.put(None)

    runner = SessionRunner(protocol, source, store, args.participant, player=player, labels=args.labels,
                           time_scale=args.time_scale, seed=args.seed, markers=markers,
                           source_spec=args.source, max_outage_s=max_outage_s,
                           markers_wait_s=max(0.0, args.markers_wait_s))
    runner.add_listener(show)
    try:
        # SIGTERM and SIGHUP end the session as Ctrl-C does: stored as interrupted, with
        # its session_end marker and the EEG tail flushed
        with ending_signals():
            try:
                runner.start()
                while True:
                    event = prompts.get()
                    if event is None:
                        break
                    _ask(runner, event, protocol.sam)
                result = runner.join()
            except KeyboardInterrupt:
                runner.interrupt()
                result = runner.join(30)
    finally:
        source.disconnect()
        if markers is not None:
            markers.close()
    if result is None:
        raise ProtocolError("the session did not end cleanly")
    for message in result.messages:
        _say(f"note: {message}")
    print(result.session_id)
    if args.json:
        summary = result.as_dict()
        summary["store"] = str(store.path)
        write_json(summary, args.json)
    store.close()
    if result.status == "failed":
        _say(f"duygu: session {result.session_id} failed: {result.reason}")
        return 1
    if result.status != "completed":
        _say(f"duygu: session {result.session_id} {result.status}")
        return 1
    return 0


def _ask(runner: Any, event: Any, sam: bool) -> None:
    """Ask for a label (and SAM ratings) on stdin until a valid answer is given."""
    from acquisition.errors import ProtocolError

    labels = list(event.labels)
    menu = ", ".join(f"{k + 1}={name}" for k, name in enumerate(labels))
    while True:
        print(f"How did the music make you feel? {menu}: ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            runner.abort()
            return
        answer = line.strip().lower()
        label = labels[int(answer) - 1] if answer.isdigit() and 1 <= int(answer) <= len(labels) else answer
        valence = arousal = None
        try:
            if sam:
                valence = _rating("valence (1 unpleasant - 9 pleasant)")
                arousal = _rating("arousal (1 calm - 9 excited)")
            runner.submit_label(label, valence, arousal)
            return
        except (ProtocolError, ValueError) as exc:
            _say(f"  {exc}")


def _rating(name: str) -> int:
    print(f"  {name}: ", end="", file=sys.stderr, flush=True)
    text = sys.stdin.readline().strip()
    if not text.isdigit():
        raise ValueError(f"{name.split()[0]} must be a whole number 1-9, got {text!r}")
    return int(text)
