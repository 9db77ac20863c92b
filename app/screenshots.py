"""Write a PNG of every view: ``python -m app.screenshots docs/screenshots``.

Runs the real app offscreen on the simulated EPOC+: a short time-scaled session with
the demo protocol (answers given on the label screen), training, live prediction and a
replay of the recorded session, capturing each view on the way. Everything is written
to a temporary store; nothing of the user's data is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TIME_SCALE = 30.0
LIVE_SCALE = 4.0  # the live-prediction session: slow enough for the smoothed decision to follow
VIEW_SIZE = (1440, 880)


def _spin(app: object, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _wait(app: object, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def _qsettings(folder: Path):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    return QSettings(str(folder / "layout.ini"), QSettings.Format.IniFormat)


def _music_model(folder: Path) -> Path:
    """Train a logistic-regression music model on 16 freshly synthesised 12 s pieces."""
    import soundfile as sf

    from models import music
    from processing import synth

    sfreq_hz = 16000
    for s, style in enumerate(synth.STYLES):
        for e, emotion in enumerate(synth.EMOTIONS):
            x = synth.synthesize(emotion, style, seed=700 + 10 * s + e, duration_s=12.0, sfreq_hz=sfreq_hz,
                                 root_midi=synth.ROOTS_MIDI[(s + e + 1) % len(synth.ROOTS_MIDI)])
            (folder / emotion).mkdir(parents=True, exist_ok=True)
            sf.write(folder / emotion / f"{style}.wav", x, sfreq_hz)
    library = music.load_library(folder, segment_s=6.0, hop_s=3.0)
    path = folder.parent / "music-model.skops"
    music.train_music_model(library, "logreg").save(path)
    return path


def run(out_dir: Path, protocol: Path | None = None) -> list[Path]:
    """Drive the app and save one PNG per view into ``out_dir``; returns the paths."""
    from PySide6.QtWidgets import QApplication

    from app.main_window import DEFAULT_PROTOCOL, MainWindow

    out_dir.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="duygu-screens-"))
    os.environ.setdefault("DUYGU_DATA_DIR", str(tmp / "data"))
    os.environ.setdefault("DUYGU_CONFIG_DIR", str(tmp / "config"))
    win = MainWindow(qsettings=_qsettings(tmp), store_path=tmp / "store.sqlite",
                     protocol_path=protocol or DEFAULT_PROTOCOL, contact_quality=False, markers=False)
    win.session_view.confirm = lambda *_: True  # nobody to answer a dialog
    win.resize(*VIEW_SIZE)
    win.show()
    saved: list[Path] = []

    def shot(widget: object, name: str) -> None:
        _spin(app, 0.3)
        path = out_dir / f"{name}.png"
        widget.grab().save(str(path))  # type: ignore[attr-defined]
        saved.append(path)
        print(f"wrote {path}")

    try:
        _wait(app, lambda: win.engine_ready, 120, "the engine to load")
        panel = win.source_panel
        panel.set_kind("simulated")
        panel.sim_speed.setValue(TIME_SCALE)
        panel.connect_selected()
        _wait(app, lambda: win.controller.source is not None
              and win.controller.source.buffer.total > 15 * 128, 30, "the simulated source")

        win.tabs.setCurrentWidget(win.signals_view)
        win.signals_view.mode.setCurrentIndex(win.signals_view.mode.findData("filtered"))
        _spin(app, 0.6)
        win.signals_view.auto_scale()
        shot(win, "01-signals")
        win.tabs.setCurrentWidget(win.spectrum_view)
        _spin(app, 0.6)
        shot(win, "02-spectrum")
        win.tabs.setCurrentWidget(win.headmap_view)
        _spin(app, 1.2)
        shot(win, "03-signal-quality")

        sv = win.session_view
        win.tabs.setCurrentWidget(sv)
        sv.participant.setText("P01")
        sv.time_scale.setValue(TIME_SCALE)
        sv.audio.setChecked(False)
        task = sv.run_preflight()
        _wait(app, lambda: task.is_done, 60, "the preflight")
        sv.start()
        answered = 0
        while sv.running:
            if sv.prompt.active and sv._current_intended:
                if answered == 5:
                    shot(win, "04-session")
                    # the participant's label window (F11), as on a 1280 x 720 monitor (the
                    # offscreen "screen" is 800 x 800, too narrow for the four large buttons)
                    screen = sv.open_label_window()
                    screen.showNormal()
                    screen.resize(1280, 720)
                    _spin(app, 0.2)
                    shot(screen, "05-label-screen")
                    screen.hide()
                _spin(app, sv.prompt.min_delay_s + 0.05)
                sv.prompt.answer(sv._current_intended, 5, 5)
                answered += 1
            _spin(app, 0.05)
        shot(win, "06-session-done")

        tv = win.training_view
        win.tabs.setCurrentWidget(tv)
        task = tv.refresh_sessions()
        _wait(app, lambda: task.is_done and tv.sessions.count() > 0, 30, "the session list")
        _spin(app, 0.2)
        tv.set_classifiers(["logreg", "svm-rbf", "knn"])
        train = tv.start()
        _wait(app, lambda: train is not None and train.is_done, 300, "training")
        _spin(app, 0.3)
        shot(win, "07-training")

        # live prediction during a second, really running session at 4x: the simulated
        # participant's state follows the session's stimuli, the context is that session's
        pv = win.prediction_view
        sv.time_scale.setValue(LIVE_SCALE)  # the simulated headset follows the session's time scale
        _wait(app, lambda: win.controller.source is not None and not win.controller.busy
              and getattr(win.controller.source, "speed", None) == LIVE_SCALE
              and str(win.controller.source.status) == "streaming", 30, "the simulator at the session's speed")
        tv._use()
        win.tabs.setCurrentWidget(sv)
        sv.participant.setText("P02")
        if sv.start() is None:
            raise RuntimeError("the live session did not start")
        shot_taken = False
        while sv.running and not shot_taken:
            if sv.prompt.active and sv._current_intended and sv.prompt.pending is None:
                _spin(app, sv.prompt.min_delay_s + 0.05)
                sv.prompt.answer(sv._current_intended, 5, 5)
            ctx = win.state.session_context
            if (len(sv.reports) >= 2 and sv.phase == "music" and sv.phase_end is not None
                    and sv.phase_end - time.monotonic() < 2.0 and pv.n_predictions > 20):
                win.tabs.setCurrentWidget(pv)  # late in a piece: the smoothed decision has caught up
                shot(win, "08-live-prediction")
                print(f"  live context: {ctx}")
                # the same running session on a 1280 x 720 screen
                win.resize(1280, 720)
                win.tabs.setCurrentWidget(sv)
                shot(win, "12-session-1280x720")
                win.tabs.setCurrentWidget(pv)
                shot(win, "13-live-prediction-1280x720")
                win.resize(*VIEW_SIZE)
                shot_taken = True
            _spin(app, 0.05)
        if not shot_taken:
            raise RuntimeError("the live session ended before the live-prediction screenshot")
        sv.abort()  # confirmed (no one to ask): stored as aborted
        _wait(app, lambda: not sv.running, 30, "the live session to end")

        rv = win.replay_view
        win.tabs.setCurrentWidget(rv)
        task = rv.refresh_sessions()
        _wait(app, lambda: task.is_done and rv.table.rowCount() > 0, 30, "the recorded sessions")
        rv.table.selectRow(0)
        rv.speed.setCurrentIndex(rv.speed.findData(5.0))
        rv.play_selected()
        _wait(app, lambda: win.controller.source is not None and win.controller.source.kind == "replay"
              and win.controller.source.counters.received > 12 * 128, 30, "the replay")
        _spin(app, 1.0)
        shot(win, "09-replay")
        win.tabs.setCurrentWidget(win.signals_view)
        _spin(app, 0.8)
        shot(win, "10-replay-signals")

        # stimulus library: the demo protocol's 16 pieces, with a music model trained on
        # other synthesised pieces (different seeds and roots from the demo files)
        stv = win.stimulus_view
        win.tabs.setCurrentWidget(stv)
        model_path = _music_model(tmp / "music-library")
        stv.load_model(model_path)
        _wait(app, lambda: stv.model_path == model_path, 60, "the music model")
        _wait(app, lambda: stv.task is None and stv.table.rowCount() > 0
              and all(stv.row(r)["perceived"] not in ("", "…") for r in range(stv.table.rowCount())),
              240, "the stimulus analysis")
        stv.table.clearSelection()
        shot(win, "11-stimuli")
    finally:
        win.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="docs/screenshots", type=Path)
    parser.add_argument("--protocol", type=Path, help="protocol of the session (default: the demo protocol)")
    args = parser.parse_args(argv)
    from app.gui import display_problem

    if display_problem() is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    run(args.out_dir, args.protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
