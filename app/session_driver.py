"""Glue between the session view and :mod:`acquisition.session.runner` (no widgets here).

:func:`run_session` runs in a worker thread: it loads the protocol, runs the preflight,
opens the store, the stimulus player and the marker outlet, and runs a
:class:`~acquisition.session.runner.SessionRunner` to its end. A session stopped because the
window closed is stored as ``interrupted`` (:meth:`SessionRunner.interrupt`), one the
operator aborted as ``aborted``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def audio_check() -> Callable[[], str]:
    """The preflight's audio-output check (``app.player.check_output``)."""
    from app.player import check_output

    return check_output


def run_session(options: dict[str, Any], on_event: Callable[[Any], None], set_runner: Callable[[Any], None],
                interrupted: Callable[[], bool]) -> Any:
    """Run one session described by ``options``; returns the runner's ``SessionResult``.

    ``options``: participant, protocol_path, time_scale, labels ("prompt"|"auto"), audio
    (bool), store_path, source (connected BaseSource), spec (str), markers (bool),
    marker_outlet (the app's MarkerOutlet or None), max_outage_s (float, optional: the
    settings' value).
    """
    from acquisition.session.protocol import load_protocol, preflight
    from acquisition.session.runner import SessionRunner
    from acquisition.settings import load_settings
    from acquisition.store.sqlite import SessionStore, validate_participant

    settings = load_settings()
    participant = validate_participant(str(options["participant"]), settings.participant_pattern)
    protocol = load_protocol(Path(options["protocol_path"]))
    audio = bool(options.get("audio", True))
    store_path = Path(options["store_path"])
    preflight(protocol, audio_check=audio_check() if audio else None, store_dir=store_path.parent,
              check_audio_files=audio)
    player = None
    if audio:
        from app.player import StimulusPlayer

        player = StimulusPlayer()
    # the app's marker outlet, made at launch so recorders can attach before the session
    markers = options.get("marker_outlet") if options.get("markers", True) else None
    store = SessionStore(store_path, participant_pattern=settings.participant_pattern)
    try:
        runner = SessionRunner(protocol, options["source"], store, participant, player=player,
                               labels=str(options.get("labels", "prompt")),
                               time_scale=float(options.get("time_scale", 1.0)), markers=markers,
                               source_spec=str(options.get("spec", "")),
                               max_outage_s=float(options.get("max_outage_s") or settings.max_outage_s))
        runner.add_listener(on_event)
        set_runner(runner)
        if interrupted():  # the window closed before the view could see the runner
            runner.interrupt()
        return runner.run()
    finally:
        store.close()
