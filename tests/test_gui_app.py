"""GUI tests (offscreen, pytest-qt): start-up, views, bad input, responsiveness, shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.gui import fill_labelled_store, qsettings_in, write_protocol

ROOT = Path(__file__).resolve().parents[1]


# -- start-up ---------------------------------------------------------------------------
def _env_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return env


@pytest.mark.parametrize("argv", [["gui"], []])
def test_no_display_exits_3_with_one_line(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "app.cli", *argv], env=_env_without_display(), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("no display found:")
    assert "duygu demo --headless" in lines[0]


def test_display_problem_rules() -> None:
    from app.gui import display_problem

    assert display_problem({}, "linux") is not None
    assert display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux") is not None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None


def test_gui_runs_offscreen_and_quits(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "app.cli", "gui", "--source", "simulated:3", "--quit-after", "2",
                           "--store", str(tmp_path / "s.sqlite")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal Python error" not in proc.stderr


def test_bad_source_spec_is_one_line_error() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "app.cli", "gui", "--source", "bogus:1"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("duygu: error: unknown source spec")


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def make_window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    from app.main_window import MainWindow

    made = []

    def make(**kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("qsettings", qsettings_in(tmp_path))
        kwargs.setdefault("store_path", tmp_path / "store.sqlite")
        kwargs.setdefault("contact_quality", False)
        kwargs.setdefault("markers", False)
        win = MainWindow(**kwargs)
        win.session_view.confirm = lambda *_: True  # no modal dialog in a test: "yes, end it"
        qtbot.addWidget(win)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


def test_views_follow_the_app_state_without_a_main_window(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Views know only the AppState: a protocol chosen in the session view reaches the
    stimulus view, a bundle chosen anywhere reaches live prediction, the session's live
    context reaches live prediction, and a finished session refreshes the session lists."""
    from acquisition.settings import load_settings
    from app.notifications import NotificationCenter
    from app.state import AppState, SessionContext
    from app.views.prediction import PredictionView
    from app.views.session import SessionView
    from app.views.stimuli import StimulusView
    from app.views.training import TrainingView
    from app.workers import WorkerPool

    notes = NotificationCenter()
    pool = WorkerPool(notify=notes.notify)
    state = AppState(load_settings(), tmp_path / "store.sqlite", tmp_path / "a.toml", pool, notes)
    session, stimuli, prediction, training = (SessionView(state), StimulusView(state), PredictionView(state),
                                              TrainingView(state))
    for w in (session, stimuli, prediction, training):
        qtbot.addWidget(w)
    seen: list[object] = []
    state.protocol_changed.connect(seen.append)
    session.protocol_path.setText(str(tmp_path / "b.toml"))
    assert seen == [tmp_path / "b.toml"] and stimuli.selected_protocol() == tmp_path / "b.toml"

    from types import SimpleNamespace

    state.choose_bundle(SimpleNamespace(classes=["happy", "sad"], meta={"classifier": "lda"}), "chosen in a test")
    assert prediction.classes == ["happy", "sad"] and "chosen in a test" in prediction.bundle_label.text()

    state.update_session_context(running=True, playing="bells", intended="sad", reported="happy")
    assert [prediction.ctx_labels[k].text() for k in ("playing", "intended", "reported")] == ["bells", "sad", "happy"]
    assert state.session_context == SessionContext(running=True, playing="bells", intended="sad", reported="happy")
    state.clear_session_context()  # the session ended (or a replay starts): nothing of it stays
    assert [prediction.ctx_labels[k].text() for k in ("playing", "intended", "reported")] == ["—", "—", "—"]
    assert state.session_context == SessionContext()

    fill_labelled_store(tmp_path / "store.sqlite", n_per_class=1, trial_s=2.0)
    state.publish_session_finished("done")  # a session ended: the lists refresh themselves
    qtbot.waitUntil(lambda: training.sessions.count() == 1, timeout=20000)
    pool.shutdown(timeout_ms=10000)


def _connect_sim(qtbot, win, speed: float = 1.0) -> None:  # type: ignore[no-untyped-def]
    win.source_panel.set_kind("simulated")
    win.source_panel.sim_speed.setValue(speed)
    win.source_panel.connect_selected()
    qtbot.waitUntil(lambda: win.controller.source is not None
                    and str(win.controller.source.status) == "streaming", timeout=30000)


def _auto_session(sv, participant: str, audio: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Set the session view up for a short session with automatic labels at 5x (6 s of
    music, 2 s of silence with the tests' protocols)."""
    sv.participant.setText(participant)
    sv.labels_mode.setCurrentIndex(sv.labels_mode.findData("auto"))
    sv.time_scale.setValue(5.0)
    sv.audio.setChecked(audio)


def _run_delays_ns() -> tuple[int, dict[str, int], list[int]] | None:
    """Nanoseconds spent waiting for a CPU: by the calling thread and by each other thread
    of this process (``/proc/thread-self/schedstat`` and ``/proc/self/task/*/schedstat``,
    field 2), and stolen from each virtual CPU by the hypervisor (``/proc/stat``, whose
    steal column the kernel counts in USER_HZ ticks); ``None`` where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            own = int(f.read().split()[1])
        others: dict[str, int] = {}
        me = str(threading.get_native_id())
        for tid in os.listdir("/proc/self/task"):
            if tid == me:
                continue
            try:
                with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                    others[tid] = int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the thread ended meanwhile
        tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        with open("/proc/stat", "rb") as f:
            steal = [int(line.split()[8]) * tick_ns for line in f
                     if line.startswith(b"cpu") and not line.startswith(b"cpu ")]
        return own, others, steal
    except (OSError, IndexError, ValueError):
        return None


class Heartbeat:
    """A 10 ms QTimer that records the longest stall of the event loop between its ticks.

    A stall is the wall-clock gap between two ticks minus the time spent waiting for a CPU
    meanwhile: the GUI thread's own scheduler run delay, plus the largest run delay of any
    other thread of this process (a worker preempted while it holds the GIL keeps the GUI
    thread waiting only because the machine is busy), plus the largest time the hypervisor
    stole from one virtual CPU (a CI runner is a VM). Time waiting for a CPU is the
    machine's load (other pytest workers on a 2-core CI runner), not the app's doing; time
    the GUI thread spent running Python, blocked on the GIL held by a *running* worker, on
    a lock or on I/O is all still counted, so a GIL-hogging worker or blocking work in the
    GUI thread still shows as a stall. ``max_wall_gap_ms`` keeps the uncorrected figure.
    """

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.last_delays = _run_delays_ns()
        self.max_gap_ms = 0.0
        self.max_wall_gap_ms = 0.0
        self.cpu_wait_ms = 0.0  # total run delay subtracted
        self.ticks = 0

    def start(self) -> Heartbeat:
        self.last = time.perf_counter()
        self.last_delays = _run_delays_ns()
        self.timer.start()
        return self

    def _tick(self) -> None:
        now = time.perf_counter()
        delays = _run_delays_ns()
        wall_ms = (now - self.last) * 1000.0
        waited_ms = 0.0
        if delays is not None and self.last_delays is not None:
            (own, others, steal), (own0, others0, steal0) = delays, self.last_delays
            worst_other = max((d - others0[t] for t, d in others.items() if t in others0), default=0)
            stolen = max((a - b for a, b in zip(steal, steal0, strict=False)), default=0)
            waited_ms = min(wall_ms, (own - own0 + worst_other + stolen) / 1e6)
        self.max_wall_gap_ms = max(self.max_wall_gap_ms, wall_ms)
        self.max_gap_ms = max(self.max_gap_ms, wall_ms - waited_ms)
        self.cpu_wait_ms += waited_ms
        self.last, self.last_delays = now, delays
        self.ticks += 1

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap_ms

    def settle(self, qtbot, n: int = 30) -> None:  # type: ignore[no-untyped-def]
        """Let ``n`` more ticks pass: the event loop shows a step's aftermath (results drawn,
        a tab painted) before the next step, as it has when an operator clicks next."""
        target = self.ticks + n
        qtbot.waitUntil(lambda: self.ticks >= target, timeout=20000)


def _idle_noise_ms(qtbot) -> float:  # type: ignore[no-untyped-def]
    """The heartbeat's worst stall beyond its 10 ms period while the app does nothing and
    a child Python imports what the engine jobs import (the load a job's start puts on a
    2-core machine, without this process doing anything)."""
    beat = Heartbeat().start()
    child = subprocess.Popen([sys.executable, "-c", "import mne_bids, sklearn.svm, skops.io, scipy.signal"])
    try:
        until = time.monotonic() + 15.0  # the import's start-up is what counts; a slow machine
        qtbot.waitUntil(lambda: child.poll() is not None or time.monotonic() > until, timeout=30000)
        qtbot.wait(300)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    return max(0.0, beat.stop() - 10.0)


# -- views ---------------------------------------------------------------------------------
def test_filtered_signals_hold_a_glitch_instead_of_ringing(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A one-sample radio glitch (hundreds of thousands of µV) would make the display's
    causal filter ring for seconds: the filtered trace holds it at the channel's level; a
    channel that really moved (a re-seated electrode) is followed, not held."""
    from app.views.common import GLITCH_UV
    from app.views.signals import SignalsView

    view = SignalsView()
    qtbot.addWidget(view)
    rng = np.random.default_rng(0)
    first = 4200 + rng.normal(0, 10, (8, 14))
    assert np.array_equal(view._hold_glitches(first.copy()), first)
    chunk = 4200 + rng.normal(0, 10, (8, 14))
    chunk[3, 5] = 350_000.0
    held = view._hold_glitches(chunk.copy())
    assert abs(held[3, 5] - 4200) < 50 and np.array_equal(np.delete(held, 3, 0), np.delete(chunk, 3, 0))
    moved = 4200 + rng.normal(0, 10, (8, 14))
    moved[:, 2] += 3 * GLITCH_UV  # the whole chunk of one channel: a real change of level
    assert np.array_equal(view._hold_glitches(moved.copy()), moved)


def test_signals_view_updates_existing_curves(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    view = win.signals_view
    items_before = list(view.plot.getPlotItem().items)
    _connect_sim(qtbot, win, speed=8.0)
    qtbot.waitUntil(lambda: win.controller.source.buffer.total > 11 * 128, timeout=30000)
    frames = view.frames
    qtbot.waitUntil(lambda: view.frames > frames + 5, timeout=5000)
    assert list(view.plot.getPlotItem().items) == items_before  # no new items per frame
    assert view.traces.n_channels == 14
    assert view.traces.n == 10 * 128 and view.traces.filled == 10 * 128  # the 10 s window
    assert view.traces.mode == "sweep" and view.traces.x_range() == (0.0, 10.0)
    centred = view._centred()
    assert np.all(np.abs(np.nanmedian(centred, axis=0)) < 25.0)  # DC (~4200 µV) removed
    view.window_spin.setValue(4.0)
    qtbot.waitUntil(lambda: view.traces.n == 4 * 128 and view.traces.filled > 0, timeout=5000)
    view.display.setCurrentIndex(view.display.findData("scroll"))
    assert view.traces.x_range() == (-4.0, 0.0)
    # filtered mode once the engine has loaded
    qtbot.waitUntil(lambda: win.engine_ready, timeout=60000)
    view.mode.setCurrentIndex(view.mode.findData("filtered"))
    qtbot.waitUntil(lambda: view._filter is not None and view.traces.filled > 128, timeout=5000)
    # per-channel gain scales only that channel
    view.scale_spin.setValue(1000.0)
    view.freeze.setChecked(True)
    _, y1 = view.traces.display()
    view.channel_pick.setCurrentIndex(3)
    view.gain_spin.setValue(2.0)
    _, y2 = view.traces.display()
    base = 14 - 1 - 3
    drawn = np.isfinite(y1[:, 3])
    assert drawn.sum() > 128
    assert np.allclose(y2[drawn, 3] - base, 2.0 * (y1[drawn, 3] - base))
    assert np.allclose(y2[:, 2], y1[:, 2], equal_nan=True)


def test_sweep_traces_repaint_only_the_strip_that_changed(qtbot) -> None:  # type: ignore[no-untyped-def]
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from app.widgets.traces import TraceItem

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(1000, 600)
    traces = TraceItem(14, 1280, 128.0, ["#000000"] * 14, blank_s=0.25)
    plot.addItem(traces)
    plot.setXRange(0, 10, padding=0)
    plot.setYRange(-1.2, 14.2, padding=0)
    plot.show()
    qtbot.waitExposed(plot)
    rng = np.random.default_rng(0)
    traces.set_gain(np.full(14, 1 / 100.0))
    data = rng.normal(0, 30, (1400, 14))
    traces.write(data[:1300])  # more than the window: the newest 1280, full repaint
    qtbot.waitUntil(lambda: traces.painted_samples > 1000 * 14, timeout=5000)
    assert np.array_equal(traces.values(), data[20:1300])
    for _ in range(5):  # the repaints the show, the ranges and the first write queued
        QApplication.processEvents()
    traces.painted_samples = 0
    traces.write(data[1300:1304])  # 4 new samples: a strip of them, the gap ahead and a margin
    qtbot.waitUntil(lambda: traces.painted_samples > 0, timeout=5000)
    assert traces.painted_samples <= 14 * (4 + 32 + 12), traces.painted_samples
    assert np.array_equal(traces.values()[-4:], data[1300:1304])
    # wrapping around the end of the sweep keeps time order
    traces.write(data[1304:1400])
    assert np.array_equal(traces.values(), data[120:1400])
    _, y = traces.display()
    hidden = np.isnan(y[:, 0])  # the blank gap just ahead of the cursor
    assert hidden.sum() == 32 and hidden[traces.cursor:traces.cursor + 32].all()
    # scroll mode repaints everything each frame, newest sample at x = 0
    traces.set_mode("scroll")
    plot.setXRange(*traces.x_range(), padding=0)
    qtbot.waitUntil(lambda: traces.painted_samples > 1200 * 14, timeout=5000)
    traces.painted_samples = 0
    traces.write(data[:2])
    qtbot.waitUntil(lambda: traces.painted_samples > 1200 * 14, timeout=5000)
    x, y = traces.display()
    assert x[-1] == 0.0 and np.allclose(y[-1, 0], data[1, 0] / 100.0 + 13)
    with pytest.raises(ValueError, match="unknown trace mode 'page'"):
        traces.set_mode("page")


def test_signals_view_follows_a_source_with_other_channels(qtbot) -> None:  # type: ignore[no-untyped-def]
    from acquisition.sources.base import BaseSource
    from app.views.signals import SignalsView

    class EightChannels(BaseSource):
        channels = tuple(f"C{i}" for i in range(8))
        sfreq_hz = 250.0

        def _open(self, timeout_s: float):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def _read(self, timeout_s: float):  # type: ignore[no-untyped-def]
            return None

        def _close(self) -> None:
            pass

    view = SignalsView(window_s=4.0)
    qtbot.addWidget(view)
    source = EightChannels()
    view.set_source(source)
    assert view.traces.n_channels == 8 and view.traces.n == 1000
    assert [view.channel_pick.itemText(i) for i in range(view.channel_pick.count())] == list(source.channels)
    source.buffer.push(np.ones((300, 8)), np.arange(300) / 250.0)
    view.refresh()
    assert view.traces.filled == 300


def test_spectrum_and_quality_views(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    _connect_sim(qtbot, win, speed=8.0)
    qtbot.waitUntil(lambda: win.controller.source.buffer.total > 5 * 128, timeout=10000)
    win.tabs.setCurrentWidget(win.spectrum_view)
    qtbot.waitUntil(lambda: win.spectrum_view.last_band_power is not None, timeout=5000)
    bands = win.spectrum_view.last_band_power
    assert bands.shape == (5, 14)
    occipital_alpha = bands[2, [6, 7]].mean() / bands[:, [6, 7]].sum(axis=0).mean()
    frontal_gamma = bands[4].sum() / bands.sum()
    assert occipital_alpha > frontal_gamma  # the simulator's alpha over O1/O2
    ticks = win.spectrum_view.psd_plot.getPlotItem().getAxis("left")._tickLevels
    assert [label for _v, label in ticks[0]][3:7] == ["0.1", "1", "10", "100"] and ticks[1] == []  # uncluttered
    heights = win.spectrum_view.bars.opts["height"]
    assert abs(float(np.sum(heights)) - 100.0) < 1e-6  # relative band power in %
    win.tabs.setCurrentWidget(win.headmap_view)
    qtbot.waitUntil(lambda: win.headmap_view.report is not None
                    and win.headmap_view.report.levels()[0] != "no data", timeout=5000)
    assert win.headmap_view.report.levels().count("good") >= 12
    assert win.headmap_view.table.item(0, 1).text() in ("good", "fair", "poor", "bad")


def test_source_panel_counters_and_disconnect(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    _connect_sim(qtbot, win, speed=2.0)
    panel = win.source_panel
    qtbot.waitUntil(lambda: panel.status_label.text() == "streaming", timeout=5000)
    for i in range(win.tabs.count()):  # the simulated source is labelled so in every view
        win.tabs.setCurrentIndex(i)
        assert _inside_window(win, win.simulated_badge) and win.simulated_badge.text() == "SIMULATED"

    def rate() -> float:
        text = panel.counter_labels["rate"].text()
        return float(text.split()[0]) if text.endswith("Hz") else float("nan")

    # the panel's rate is measured over the last 2 s; right after connecting (or on a
    # loaded machine) its first readings cover less, so wait for the settled figure
    qtbot.waitUntil(lambda: 150 < rate() < 400, timeout=10000)  # 2x of 128 Hz
    assert panel.counter_labels["lost"].text() == "0"
    win.tabs.setCurrentWidget(win.headmap_view)
    qtbot.waitUntil(lambda: win.headmap_view.report is not None
                    and win.headmap_view.report.levels().count("good") >= 12, timeout=10000)
    win.controller.source.disconnect()  # the source stops: nothing it measured stays on screen as live
    qtbot.waitUntil(lambda: set(win.headmap_view.report.levels()) == {"no data"}, timeout=5000)
    qtbot.waitUntil(lambda: panel.counter_labels["rate"].text() == "—", timeout=5000)
    panel.disconnect_button.click()
    qtbot.waitUntil(lambda: win.controller.source is None and not win.controller.busy, timeout=5000)
    qtbot.waitUntil(lambda: panel.status_label.text() == "disconnected", timeout=5000)
    assert all(label.text() == "—" for label in panel.counter_labels.values())
    assert not win.simulated_badge.isVisible()


def test_brainflow_synthetic_board_from_the_panel(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    panel = win.source_panel
    panel.set_kind("brainflow")
    panel.bf_board.setCurrentText("SYNTHETIC_BOARD")  # boards by name, parameters as fields
    assert panel.spec() == "brainflow:SYNTHETIC_BOARD"
    panel.bf_params["timeout"].setText("15")
    assert panel.spec() == "brainflow:SYNTHETIC_BOARD?timeout=15"
    panel.connect_selected()
    qtbot.waitUntil(lambda: win.controller.source is not None
                    and win.controller.source.buffer.total > 256, timeout=30000)
    assert win.controller.source.sfreq_hz == 128.0
    frames = win.signals_view.frames
    qtbot.waitUntil(lambda: win.signals_view.frames > frames + 2, timeout=10000)
    qtbot.waitUntil(lambda: "250" in panel.device_label.text(), timeout=5000)  # native rate shown
    assert "AF3←Fz" in panel.device_label.text()  # and which board channel stands for which


def test_layout_is_remembered(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    win.resize(1333, 777)
    win.signals_view.window_spin.setValue(20.0)
    win.signals_view.display.setCurrentIndex(win.signals_view.display.findData("scroll"))
    win.tabs.setCurrentIndex(2)
    win.close()
    again = make_window()
    assert again.size().width() == 1333 and again.size().height() == 777
    assert again.signals_view.window_s == 20.0
    assert again.signals_view.traces.mode == "scroll" and again.signals_view.traces.x_range() == (-20.0, 0.0)
    assert again.tabs.currentIndex() == 2
    assert (tmp_path / "duygu-gui.ini").exists()


def _inside_window(win, widget) -> bool:  # type: ignore[no-untyped-def]
    """``widget`` is shown and wholly inside ``win`` (and inside every scroll area's view)."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QAbstractScrollArea

    if not widget.isVisible() or widget.width() < 8 or widget.height() < 8:
        return False
    rect = QRect(widget.mapTo(win, QPoint(0, 0)), widget.size())
    if not win.rect().contains(rect):
        return False
    parent = widget.parentWidget()
    while parent is not None and parent is not win:  # scrolled out of a scroll area's view?
        if isinstance(parent, QAbstractScrollArea):
            view = parent.viewport()
            if not QRect(view.mapTo(win, QPoint(0, 0)), view.size()).contains(rect):
                return False
        parent = parent.parentWidget()
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [(1024, 768), (1280, 720)])
def test_small_screens_show_every_tab_and_the_dock_can_be_hidden(qtbot, make_window,
                                                                size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    from app.widgets.label_screen import LabelPrompt, LabelWindow

    win = make_window()
    assert win.minimumSizeHint().width() <= 1024 and win.minimumSizeHint().height() <= 720
    win.resize(*size)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == size, timeout=5000)
    key_widgets = {
        win.signals_view: [win.signals_view.plot, win.signals_view.window_spin, win.signals_view.freeze],
        win.spectrum_view: [win.spectrum_view.psd_plot, win.spectrum_view.band_plot],
        win.headmap_view: [win.headmap_view.plot, win.headmap_view.table, win.headmap_view.mode],
        win.session_view: [win.session_view.participant, win.session_view.protocol_path, win.session_view.start_button,
                           win.session_view.abort_button, win.session_view.log, win.session_view.fullscreen_button,
                           *win.session_view.label_screen.buttons],
        win.training_view: [win.training_view.sessions, win.training_view.run_button, win.training_view.table,
                            win.training_view.save_button, win.training_view.use_button],
        win.prediction_view: [win.prediction_view.load_button, win.prediction_view.decision,
                              win.prediction_view.bar_plot, win.prediction_view.timeline,
                              *win.prediction_view.ctx_labels.values()],
        win.replay_view: [win.replay_view.table, win.replay_view.play_button, win.replay_view.export_csv_button],
        win.stimulus_view: [win.stimulus_view.table, win.stimulus_view.model_button],
    }
    assert len(key_widgets) == win.tabs.count()
    for view, widgets in key_widgets.items():
        win.tabs.setCurrentWidget(view)
        for w in [*widgets, win.source_panel.connect_button]:
            try:
                qtbot.waitUntil(lambda w=w: _inside_window(win, w), timeout=3000)
            except Exception as exc:
                from PySide6.QtCore import QPoint
                raise AssertionError(f"{type(view).__name__}: {type(w).__name__} {w.objectName()!r} at "
                                     f"{w.mapTo(win, QPoint(0, 0))} size {w.size()} visible {w.isVisible()} "
                                     f"in a {win.size()} window") from exc
    assert win.prediction_view.timeline.height() >= 150  # not a strip under its legend
    assert win.session_view.log.height() >= 100
    # the dock hides and comes back from the View menu
    assert win.source_action.isEnabled()
    win.source_action.trigger()
    qtbot.waitUntil(lambda: not win.source_dock.isVisible(), timeout=3000)
    win.source_action.trigger()
    qtbot.waitUntil(lambda: win.source_dock.isVisible(), timeout=3000)
    # the participant's window fits an 800 px wide screen
    window = LabelWindow(LabelPrompt())
    qtbot.addWidget(window)
    assert window.minimumSizeHint().width() <= 800


def test_layout_file_follows_the_config_dir(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.main_window import MainWindow

    win = MainWindow(store_path=tmp_path / "s.sqlite", contact_quality=False)
    qtbot.addWidget(win)
    assert win.qsettings.fileName().startswith(os.environ["DUYGU_CONFIG_DIR"])
    win.close()
    assert Path(win.qsettings.fileName()).exists()


# -- label screen ------------------------------------------------------------------------
def test_label_screen_ignores_double_input_and_hints_nothing(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.widgets.label_screen import LabelPrompt, LabelScreen, LabelWindow

    prompt = LabelPrompt(min_delay_s=0.0, undo_s=0.0)  # committed at once (the undo window: below)
    screen = LabelScreen(prompt)
    qtbot.addWidget(screen)
    screen.show()
    answers = []
    prompt.answered.connect(lambda *a: answers.append(a))
    assert not any(b.isEnabled() for b in screen.buttons)
    prompt.ask(labels=("happy", "sad", "relaxing", "tense"), trial_text="piece 3 of 16")
    qtbot.waitUntil(lambda: prompt.active, timeout=2000)
    assert [b.property("label") for b in screen.buttons] == ["happy", "sad", "relaxing", "tense"]
    assert len({b.styleSheet() for b in screen.buttons}) == 1  # every button looks the same
    assert screen.sub.text() == "piece 3 of 16"  # no stimulus, genre or intended emotion
    qtbot.keyClick(screen, "3")
    qtbot.keyClick(screen, "1")  # the second key is ignored
    assert answers == [("relaxing", None, None)]
    assert prompt.n_ignored == 1
    assert not any(b.isEnabled() for b in screen.buttons)
    # SAM sliders are sent along when the protocol asks for them; the full-screen window mirrors
    window = LabelWindow(prompt)
    qtbot.addWidget(window)
    window.open(full_screen=False)
    prompt.ask(sam=True)
    qtbot.waitUntil(lambda: prompt.active and window.screen_widget.sam_box.isVisible(), timeout=2000)
    window.screen_widget.valence.slider.setValue(8)
    window.screen_widget.arousal.slider.setValue(2)
    window.screen_widget.buttons[1].click()
    assert answers[-1] == ("sad", 8, 2)
    assert not any(b.isEnabled() for b in screen.buttons)


@pytest.mark.timeout(30)
def test_an_answer_is_acknowledged_and_can_be_undone_before_it_is_committed(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from app.widgets.label_screen import LabelPrompt, LabelScreen

    prompt = LabelPrompt(min_delay_s=0.0, undo_s=0.5)
    screen = LabelScreen(prompt)
    qtbot.addWidget(screen)
    screen.show()
    answers: list[tuple[object, ...]] = []
    prompt.answered.connect(lambda *a: answers.append(a))
    prompt.ask(labels=("happy", "sad", "relaxing", "tense"))
    qtbot.waitUntil(lambda: prompt.active, timeout=2000)
    qtbot.keyClick(screen, "2")
    assert screen.question.text() == "Recorded: Sad" and screen.undo_button.isVisible()
    assert answers == [] and not prompt.active and not any(b.isEnabled() for b in screen.buttons)
    qtbot.keyClick(screen, Qt.Key.Key_Backspace)  # changed her mind: the question is open again
    assert prompt.active and prompt.pending is None and not screen.undo_button.isVisible()
    assert all(b.isEnabled() for b in screen.buttons)
    qtbot.keyClick(screen, "4")
    with qtbot.waitSignal(prompt.answered, timeout=5000) as committed:
        pass
    assert committed.args == ["tense", None, None] and answers == [("tense", None, None)]
    assert "Recorded: Tense" in screen.sub.text() and not screen.undo_button.isVisible()
    assert prompt.undo() is False  # committed: nothing to take back


@pytest.mark.timeout(30)
def test_the_decoded_emotion_is_smoothed_like_its_bars_and_greys_out_when_the_source_goes(
        qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from acquisition.settings import load_settings
    from app.notifications import NotificationCenter
    from app.state import AppState
    from app.views.prediction import PredictionView
    from app.workers import WorkerPool

    notes = NotificationCenter()
    pool = WorkerPool(notify=notes.notify)
    state = AppState(load_settings(), tmp_path / "store.sqlite", tmp_path / "a.toml", pool, notes)
    pv = PredictionView(state)
    qtbot.addWidget(pv)
    state.choose_bundle(SimpleNamespace(classes=["happy", "sad"], meta={}), "test")
    pv.smoothing.setValue(2.0)
    for t, p_happy in enumerate((0.9, 0.9, 0.9, 0.2)):  # the latest window alone says "sad"
        pv._on_prediction(SimpleNamespace(t=float(t), probabilities={"happy": p_happy, "sad": 1 - p_happy},
                                          label="happy" if p_happy > 0.5 else "sad", clean=True, latency_ms=1.0))
    pv.drain()
    heights = np.asarray(pv.bars.opts["height"], dtype=float)
    assert pv.decision.text() == "happy" and np.allclose(heights, pv.smoothed)  # the same quantity
    assert heights[0] > 0.5 and "latest window alone: sad" in pv.confidence.text()
    assert "smoothed" in pv.bar_plot.getPlotItem().getAxis("left").labelText
    state.set_source(None)  # disconnected: no decision stays on screen
    assert pv.decision.text() == "—" and "no source" in pv.confidence.text()
    assert not np.asarray(pv.bars.opts["height"], dtype=float).any()
    pool.shutdown(timeout_ms=5000)


def test_answer_before_min_delay_is_ignored(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.widgets.label_screen import LabelPrompt

    prompt = LabelPrompt(min_delay_s=10.0)
    prompt.ask()
    qtbot.waitUntil(lambda: prompt.active, timeout=2000)
    assert prompt.answer("happy") is False  # a press left over from before the question
    assert prompt.active


# -- workers, notifications, responsiveness ------------------------------------------------
def test_worker_errors_become_notifications(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window()

    def boom(_task):  # type: ignore[no-untyped-def]
        raise ValueError("boom in a worker")

    task = win.pool.submit("a job", boom)
    qtbot.waitUntil(lambda: task.is_done, timeout=20000)
    qtbot.waitUntil(lambda: any("boom in a worker" in m for m in win.notes.messages("error")), timeout=20000)
    assert any("boom in a worker" in b.label.text() for b in win.notification_area.banners())


@pytest.mark.timeout(150)
@pytest.mark.xdist_group("gui-stall-detector")  # the two stall tests never load each other's machine
def test_event_loop_never_stalls_connecting_training_exporting(qtbot, make_window, tmp_path: Path,
                                                              eye_state_csv: Path) -> None:  # type: ignore[no-untyped-def]
    """The GUI thread never stalls > 100 ms (plus the idle noise measured the same way)
    while a replay connects, classifiers train, the model predicts live and a session exports. Stalls are measured
    by :class:`Heartbeat`: wall gaps between 10 ms ticks minus the GUI thread's scheduler
    run delay, so other processes competing for the CPUs (pytest -n 4 on 2 cores) do not
    count, while anything in this process that keeps the event loop from running does."""
    store = tmp_path / "store.sqlite"
    sid = fill_labelled_store(store, n_per_class=3)
    win = make_window(store_path=store)
    qtbot.waitUntil(lambda: win.engine_ready, timeout=90000)
    win.tabs.setCurrentWidget(win.training_view)  # the operator watches training, not the traces
    # the same heartbeat with the app idle while a child process starts as the engine jobs
    # do (spawned Python importing the engine): how late the machine alone runs this process
    noise_ms = _idle_noise_ms(qtbot)
    beat = Heartbeat().start()
    # connecting: a replay of the UCI recording (read, checked and resampled in a worker)
    win.source_panel.set_kind("replay")
    win.source_panel.replay_path.setText(str(eye_state_csv))
    win.source_panel.replay_speed.setValue(2.0)  # 58 s of EEG: it outlasts training and predicting
    win.source_panel.connect_selected()
    qtbot.waitUntil(lambda: win.controller.source is not None and win.controller.source.buffer.total > 256,
                    timeout=20000)
    beat.settle(qtbot)
    connect_gap = beat.max_gap_ms
    # training (features, grouped CV, final fit) while the replay streams
    tv = win.training_view
    tv.refresh_sessions()
    qtbot.waitUntil(lambda: tv.selected_sessions() == [sid], timeout=5000)
    tv.set_classifiers(["logreg", "knn"])
    with qtbot.waitSignal(tv.trained, timeout=120000):
        tv.start()
    beat.settle(qtbot)  # the results are drawn before the operator uses the model
    train_gap = beat.max_gap_ms
    # live prediction of the replay with the model just trained (it keeps running while exporting)
    pv = win.prediction_view
    tv.use_button.click()
    qtbot.waitUntil(lambda: pv.predictor is not None and pv.n_predictions >= 10, timeout=60000)
    beat.settle(qtbot)
    predict_gap = beat.max_gap_ms
    # exporting the session as BIDS
    rv = win.replay_view
    rv.refresh_sessions()
    qtbot.waitUntil(lambda: rv.table.rowCount() == 1, timeout=5000)
    rv.table.selectRow(0)
    task = rv.export("bids", tmp_path / "bids")
    qtbot.waitUntil(lambda: task.is_done, timeout=60000)
    assert task.error is None
    assert any((tmp_path / "bids").rglob("*.edf"))
    assert pv.n_predictions > 10  # predicting went on while exporting
    max_gap = beat.stop()
    noise_ms = max(noise_ms, _idle_noise_ms(qtbot))  # the machine's load may have changed meanwhile
    assert beat.ticks > 100
    assert max_gap < 100.0 + noise_ms, (
        f"GUI stalled {max_gap:.0f} ms (connect {connect_gap:.0f}, train {train_gap:.0f}, "
        f"predict {predict_gap:.0f}; "
        f"idle scheduling noise {noise_ms:.0f} ms; wall gap {beat.max_wall_gap_ms:.0f} ms, "
        f"{beat.cpu_wait_ms:.0f} ms waiting for a CPU subtracted in all)")
    assert tv.result is not None and tv.result["protocol"] == "grouped"
    assert tv.progress.value() == tv.progress.maximum() and tv.progress.format() == "done"  # not "92%"


@pytest.mark.timeout(150)
@pytest.mark.xdist_group("gui-stall-detector")
def test_event_loop_never_stalls_starting_pausing_resuming_aborting_a_session(
        qtbot, make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The same stall detector while a session starts, is paused, resumed and aborted,
    playing its stimuli through the real player on a private PulseAudio null sink (the
    player's stop and the fault re-checks run in workers, not on the GUI thread)."""
    from tests.support.pulse import private_pulse

    with private_pulse(monkeypatch):
        _stall_test_of_a_session(qtbot, make_window, tmp_path)


def _stall_test_of_a_session(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    win = make_window(store_path=tmp_path / "store.sqlite", protocol_path=protocol)
    _connect_sim(qtbot, win, speed=5.0)
    qtbot.waitUntil(lambda: win.engine_ready, timeout=90000)
    sv = win.session_view
    win.tabs.setCurrentWidget(sv)
    _auto_session(sv, "P06", audio=True)
    noise_ms = _idle_noise_ms(qtbot)
    beat = Heartbeat().start()
    sv.start()
    qtbot.waitUntil(lambda: sv.phase == "music", timeout=30000)
    beat.settle(qtbot)
    start_gap = beat.max_gap_ms
    playing = subprocess.run(["pactl", "list", "short", "sink-inputs"], capture_output=True, text=True,
                             timeout=10)
    assert playing.returncode == 0 and playing.stdout.strip(), playing  # the stimulus is on the null sink
    sv.pause_button.click()
    qtbot.waitUntil(lambda: sv.phase == "paused", timeout=10000)
    beat.settle(qtbot)
    sv.resume_button.click()
    qtbot.waitUntil(lambda: sv.phase == "music", timeout=10000)
    beat.settle(qtbot)
    with qtbot.waitSignal(sv.session_finished, timeout=30000) as finished:
        sv.abort_button.click()
    beat.settle(qtbot)
    max_gap = beat.stop()
    noise_ms = max(noise_ms, _idle_noise_ms(qtbot))
    assert finished.args[0].status == "aborted"
    assert beat.ticks >= 120
    assert max_gap < 100.0 + noise_ms, (
        f"GUI stalled {max_gap:.0f} ms (start {start_gap:.0f}; idle scheduling noise {noise_ms:.0f} ms; "
        f"wall gap {beat.max_wall_gap_ms:.0f} ms, {beat.cpu_wait_ms:.0f} ms waiting for a CPU subtracted)")


def test_training_can_be_cancelled(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store.sqlite"
    fill_labelled_store(store, n_per_class=3)
    win = make_window(store_path=store)
    tv = win.training_view
    qtbot.waitUntil(lambda: tv.sessions.count() == 1, timeout=10000)
    qtbot.waitUntil(lambda: win.engine_ready, timeout=90000)  # the classifier list comes with the engine
    tv.set_classifiers(["ann", "svm-poly", "svm-rbf", "knn", "logreg"])
    task = tv.start()
    qtbot.waitUntil(lambda: tv.progress.value() > 0, timeout=60000)
    tv.cancel()
    qtbot.waitUntil(lambda: task.is_done, timeout=60000)
    assert task.cancelled and task.result is None
    assert tv.bundle is None
    # is_done is set in the worker thread; the GUI re-enables the button when the queued signal lands
    qtbot.waitUntil(tv.run_button.isEnabled, timeout=5000)
    qtbot.waitUntil(lambda: "training cancelled" in win.notes.messages("warning"), timeout=5000)
    assert tv.progress.value() == 0 and tv.progress.format() == "cancelled"


# -- bad input ---------------------------------------------------------------------------
def test_replay_of_missing_or_non_eeg_file_notifies(qtbot, make_window, tmp_path: Path,
                                                    shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window()
    panel = win.source_panel
    panel.set_kind("replay")
    for path in (tmp_path / "nope.csv", shared_data / "music" / "Kevin_MacLeod_-_Vibe_Ace.ogg"):
        n_errors = len(win.notes.messages("error"))
        panel.replay_path.setText(str(path))
        panel.connect_selected()
        qtbot.waitUntil(lambda n=n_errors: len(win.notes.messages("error")) > n, timeout=20000)
        qtbot.waitUntil(lambda: not win.controller.busy, timeout=5000)
        message = win.notes.messages("error")[-1]
        assert path.name in message or "ogg" in message.lower()
        assert "\n" not in message
        assert win.controller.source is None
    _connect_sim(qtbot, win)  # the app still works


def test_lsl_stream_that_vanishes_is_reported(qtbot, make_window, lsl_name: str) -> None:  # type: ignore[no-untyped-def]
    from tests.support.lsl_outlets import start_outlet, stop_outlet

    proc = start_outlet("emotiv", "--name", lsl_name)
    try:
        win = make_window()
        panel = win.source_panel
        panel.set_kind("lsl")
        task = panel.discover()
        qtbot.waitUntil(lambda: task.is_done, timeout=15000)
        panel.lsl_streams.setEditText(lsl_name)
        panel.connect_selected()
        qtbot.waitUntil(lambda: win.controller.source is not None
                        and str(win.controller.source.status) == "streaming", timeout=20000)
        frames = win.signals_view.frames
        qtbot.waitUntil(lambda: win.signals_view.frames > frames + 2, timeout=5000)
        stop_outlet(proc)
        qtbot.waitUntil(lambda: any("signal lost" in m for m in win.notes.messages("warning")), timeout=15000)
        qtbot.waitUntil(lambda: panel.status_label.text() in ("lost", "reconnecting", "connecting"), timeout=5000)
        assert win.controller.source is not None  # still shown, reconnecting in its own thread
        win.tabs.setCurrentWidget(win.headmap_view)
        qtbot.waitUntil(lambda: win.headmap_view.report is not None, timeout=5000)
    finally:
        stop_outlet(proc)


def test_bundle_for_other_channels_is_refused(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.bundle import save_bundle

    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.random.default_rng(0).normal(size=(40, 4)), np.array(["happy", "sad"] * 20))
    path = save_bundle(tmp_path / "other.skops", est, {
        "classifier": "logreg", "channels": ["Fz", "Cz", "Pz", "Oz"], "sfreq_hz": 250.0, "preset": "default"})
    win = make_window()
    _connect_sim(qtbot, win)
    task = win.prediction_view.load_bundle(path)
    qtbot.waitUntil(lambda: task.is_done, timeout=30000)
    qtbot.waitUntil(lambda: any("channels" in m for m in win.notes.messages("error")), timeout=5000)
    assert win.prediction_view.bundle is None
    assert not win.prediction_view.start_button.isEnabled()
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a bundle at all")
    n = len(win.notes.messages("error"))
    task = win.prediction_view.load_bundle(garbage)
    qtbot.waitUntil(lambda: len(win.notes.messages("error")) > n, timeout=30000)
    assert win.prediction_view.bundle is None and win.state.bundle is None
    # a bundle that fits the source: loaded through the app state, which every view shares
    from acquisition.channels import EPOC_CHANNELS

    good = save_bundle(tmp_path / "epoc.skops", est, {
        "classifier": "logreg", "channels": list(EPOC_CHANNELS), "sfreq_hz": 128.0, "preset": "default"})
    win.prediction_view.load_bundle(good)
    qtbot.waitUntil(lambda: win.state.bundle is not None, timeout=30000)
    assert win.state.bundle_name == "epoc.skops" and win.prediction_view.bundle is win.state.bundle
    qtbot.waitUntil(lambda: win.tabs.currentWidget() is win.prediction_view, timeout=5000)  # brought to the front


def test_live_prediction_starts_in_a_worker_and_reports_a_model_that_cannot_run(
        qtbot, make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The predictor is built off the GUI thread: its errors reach the operator's log, and a
    predictor that is ready only after Stop is never started."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from acquisition.channels import EPOC_CHANNELS
    from models.bundle import load_bundle, save_bundle
    from processing.pipeline import OnlineFeatureExtractor
    from processing.presets import get_preset

    def bundle(name: str, n_features: int, meta_features: int):  # type: ignore[no-untyped-def]
        est = make_pipeline(StandardScaler(), LogisticRegression()).fit(
            np.random.default_rng(0).normal(size=(40, n_features)), np.array(["happy", "sad"] * 20))
        return load_bundle(save_bundle(tmp_path / name, est, {
            "classifier": "logreg", "channels": list(EPOC_CHANNELS), "sfreq_hz": 128.0, "preset": "default",
            "n_features": meta_features}))

    win = make_window()
    _connect_sim(qtbot, win)
    qtbot.waitUntil(lambda: win.engine_ready, timeout=90000)
    pv = win.prediction_view
    pv.use_bundle(bundle("four.skops", 4, 4), name="four.skops")  # starts: a source is connected
    qtbot.waitUntil(lambda: any("live prediction: the model expects 4 features" in m
                                for m in win.notes.messages("error")), timeout=30000)
    assert pv.predictor is None and not pv.stop_button.isEnabled() and pv.start_button.isEnabled()
    n = OnlineFeatureExtractor(get_preset("default"), 128.0, EPOC_CHANNELS).n_features
    pv.use_bundle(bundle("right.skops", n, n), name="right.skops")
    pv.user_stop()  # before the worker has built the predictor
    qtbot.waitUntil(lambda: pv.n_dropped_starts == 1, timeout=30000)
    assert pv.predictor is None and pv.n_predictions == 0
    assert pv.start()  # and a start that is left alone runs
    qtbot.waitUntil(lambda: pv.predictor is not None and pv.predictor.running, timeout=30000)
    assert pv.stop_button.isEnabled() and not pv.start_button.isEnabled()
    # an unexpected error while building: logged, nothing left half-started
    import models.live

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom while building")

    monkeypatch.setattr(models.live, "LivePredictor", broken)
    assert pv.start()
    qtbot.waitUntil(lambda: any("boom while building" in m for m in win.notes.messages("error")), timeout=30000)
    qtbot.waitUntil(pv.start_button.isEnabled, timeout=5000)
    assert pv.predictor is None and not pv.stop_button.isEnabled()


@pytest.mark.timeout(120)
def test_closing_mid_session_saves_it_interrupted(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from acquisition.store.sqlite import SessionStore

    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    store = tmp_path / "store.sqlite"
    win = make_window(store_path=store, protocol_path=protocol)
    _connect_sim(qtbot, win, speed=10.0)
    sv = win.session_view
    sv.participant.setText("P07")
    sv.time_scale.setValue(10.0)
    sv.audio.setChecked(False)
    sv.start()
    qtbot.waitUntil(lambda: sv.prompt.active, timeout=30000)  # mid-session, waiting for a label
    assert sv.session_id is not None
    reader = win.controller.source._thread
    assert reader is not None and reader.is_alive()
    win.close()
    assert not sv.running
    assert not reader.is_alive()  # the source's reader thread stopped with the window
    assert win.pool.active == []
    st = SessionStore(store, readonly=True)
    try:
        info = st.session(sv.session_id)
        assert info.status == "interrupted"
        assert info.n_samples > 0
    finally:
        st.close()


@pytest.mark.timeout(120)
def test_keys_answer_the_prompt_with_the_focus_anywhere_in_the_window(qtbot, make_window,
                                                                      tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Keys 1-4 (and the keypad's) answer the open question wherever the focus is; each
    answer is acknowledged and can be undone; a key with no question open does nothing
    and says so in the operator's log."""
    from PySide6.QtCore import Qt

    protocol = write_protocol(tmp_path / "protocol", n_per_class=1, music_s=20.0, silence_s=5.0)
    win = make_window(store_path=tmp_path / "store.sqlite", protocol_path=protocol)
    _connect_sim(qtbot, win, speed=10.0)
    sv = win.session_view
    pv = win.prediction_view
    sv.prompt.undo_s = 0.4
    sv.participant.setText("P03")
    sv.time_scale.setValue(10.0)
    sv.audio.setChecked(False)
    tv = win.training_view
    win.tabs.setCurrentWidget(tv)  # the operator looks at another tab, the focus in its session list
    tv.sessions.setFocus()

    def log() -> list[str]:
        return [sv.log.item(i).text() for i in range(sv.log.count())]

    with qtbot.waitSignal(sv.session_finished, timeout=100000) as finished:
        sv.start()
        qtbot.waitUntil(lambda: sv.phase in ("baseline", "music"), timeout=30000)
        assert not sv.prompt.active
        qtbot.keyClick(tv.sessions, "1")  # no question open yet: nothing happens, the log says so
        assert any("key 1 pressed with no question open" in line for line in log())
        n_ignored = sv.prompt.n_ignored
        answers = []
        for k, (key, modifier) in enumerate([(Qt.Key.Key_2, Qt.KeyboardModifier.NoModifier),
                                             (Qt.Key.Key_4, Qt.KeyboardModifier.KeypadModifier),
                                             (Qt.Key.Key_1, Qt.KeyboardModifier.NoModifier),
                                             (Qt.Key.Key_3, Qt.KeyboardModifier.KeypadModifier)]):
            qtbot.waitUntil(lambda: sv.prompt.active, timeout=30000)
            qtbot.waitUntil(lambda: sv.label_screen.buttons[0].isEnabled(), timeout=2000)
            qtbot.wait(int(sv.prompt.min_delay_s * 1000) + 20)  # a deliberate answer, not a leftover press
            if k == 0:  # a wrong key first, taken back with Backspace from the other tab
                qtbot.keyClick(tv.sessions, "3")
                assert sv.label_screen.question.text() == "Recorded: Relaxing"
                qtbot.keyClick(tv.sessions, Qt.Key.Key_Backspace)
                assert sv.prompt.active
            target = tv.sessions
            if k == 1:  # the full-screen label window answers the same way
                window = sv.open_label_window()
                assert window.simulated_badge.isVisible()  # the participant's screen says it too
                target = window.screen_widget.question
            qtbot.keyClick(target, key, modifier)
            if k == 1:
                assert window.screen_widget.question.text().startswith("Recorded: ")
                window.hide()
            label = sv.prompt.labels[int(key) - int(Qt.Key.Key_0) - 1]
            answers.append(label)
            assert sv.label_screen.question.text() == f"Recorded: {label.capitalize()}"
            qtbot.waitUntil(lambda n=k + 1: len(sv.reports) == n, timeout=10000)
            # live prediction shows the report, and keeps it while the next piece plays
            assert pv.ctx_labels["reported"].text() == label
            if k < 3:  # (after the last one the session ends, and its context with it)
                qtbot.waitUntil(lambda: sv.prompt.active, timeout=30000)
                assert pv.ctx_labels["reported"].text() == label
                assert pv.reported_for.text().startswith("for ")
    result = finished.args[0]
    assert [pv.ctx_labels[k].text() for k in ("playing", "intended", "reported")] == ["—", "—", "—"]
    assert result.status == "completed"
    assert [r[2] for r in sv.reports] == answers == ["sad", "tense", "happy", "relaxing"]
    assert sv.prompt.n_ignored == n_ignored  # every key was an answer (or its undo)
    assert any("took back 'relaxing'" in line for line in log())
    assert win.tabs.currentWidget() is tv  # nothing else reacted to the keys
    assert not sv.label_keys.enabled  # no session: the app's events no longer pass through the filter


@pytest.mark.timeout(90)
def test_pause_resume_abort_from_the_session_view(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    win = make_window(store_path=tmp_path / "store.sqlite", protocol_path=protocol)
    _connect_sim(qtbot, win, speed=5.0)
    sv = win.session_view
    _auto_session(sv, "P02")  # 6 s of music, 2 s of silence
    sv.start()
    qtbot.waitUntil(lambda: sv.phase == "music", timeout=20000)
    assert sv.pause_button.isEnabled() and not sv.resume_button.isEnabled()
    sv.pause_button.click()
    qtbot.waitUntil(lambda: sv.phase == "paused", timeout=10000)
    assert sv.resume_button.isEnabled() and not sv.pause_button.isEnabled()
    sv.resume_button.click()
    qtbot.waitUntil(lambda: sv.phase == "music", timeout=10000)  # the interrupted trial starts again
    with qtbot.waitSignal(sv.session_finished, timeout=30000) as finished:
        sv.abort_button.click()
    assert finished.args[0].status == "aborted"
    log = [sv.log.item(i).text() for i in range(sv.log.count())]
    texts = [line.partition("  ")[2] for line in log]
    assert texts.count("paused: operator") == 1 and texts.count("resumed") == 1, log  # each once, not twice
    assert not any(t.startswith("paused by the operator") for t in texts)
    assert not sv.abort_button.isEnabled() and sv.start_button.isEnabled()


@pytest.mark.timeout(90)
def test_a_device_disconnected_mid_session_and_connected_again_resumes_it(qtbot, make_window,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    """Disconnect during a stimulus pauses the session; Connect (the same source) brings the
    session's own source back and it resumes by itself; the time away is a gap; another
    source cannot be connected while the session records."""
    from acquisition.store.sqlite import SessionStore

    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    win = make_window(store_path=tmp_path / "store.sqlite", protocol_path=protocol)
    _connect_sim(qtbot, win, speed=5.0)
    sv = win.session_view
    _auto_session(sv, "P05")
    session_source = win.controller.source
    with qtbot.waitSignal(sv.session_finished, timeout=80000) as finished:
        sv.start()
        qtbot.waitUntil(lambda: sv.phase == "music", timeout=20000)
        win.controller.disconnect()
        qtbot.waitUntil(lambda: sv.phase == "paused", timeout=10000)
        assert any("the session pauses until simulated:0 is connected again" in m
                   for m in win.notes.messages("warning"))
        assert win.controller.connect_spec("simulated:7") is None  # another source: refused
        qtbot.waitUntil(lambda: any("a session is recording from simulated:0" in m
                                    for m in win.notes.messages("warning")), timeout=5000)
        win.source_panel.connect_selected()  # the operator connects it again
        qtbot.waitUntil(lambda: win.controller.source is session_source, timeout=20000)
    result = finished.args[0]
    assert result.status == "completed", result.messages
    with SessionStore(tmp_path / "store.sqlite", readonly=True) as store:
        gaps = store.gaps(result.session_id)
        trials = store.trials(result.session_id)
    assert len(gaps) == 1 and gaps[0].reason == "device lost"
    assert sorted(t.status for t in trials).count("complete") == 4 and "interrupted" in [t.status for t in trials]
    assert win.state.session_source is None  # the session ended: any source may be connected again


@pytest.mark.timeout(90)
def test_ending_a_session_asks_first_abort_and_close(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Abort, the window's close button and Ctrl+Q ask first: cancel keeps the session
    running, yes ends it as before (aborted)."""
    from PySide6.QtGui import QKeySequence

    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    win = make_window(store_path=tmp_path / "store.sqlite", protocol_path=protocol)
    _connect_sim(qtbot, win, speed=5.0)
    sv = win.session_view
    asked: list[str] = []
    answer = [False]

    def confirm(title: str, _text: str) -> bool:
        asked.append(title)
        return answer[0]

    sv.confirm = confirm
    _auto_session(sv, "P04")
    sv.start()
    qtbot.waitUntil(lambda: sv.phase == "music", timeout=20000)
    assert not sv.browse_button.isEnabled() and not sv.protocol_path.isEnabled()  # no protocol swap mid-session
    sv.abort_button.click()  # cancelled
    assert asked == ["End the session?"]
    win.close()  # the close button: cancelled
    quit_action = next(a for a in win.menuBar().actions()[0].menu().actions() if a.text() == "&Quit")
    assert quit_action.shortcut() == QKeySequence("Ctrl+Q")
    quit_action.trigger()  # Ctrl+Q: cancelled
    assert asked == ["End the session?", "Quit during a session?", "Quit during a session?"]
    assert win.isVisible() and sv.running and sv.runner is not None
    n_events = len(sv.events)
    qtbot.waitUntil(lambda: len(sv.events) > n_events, timeout=20000)  # the session goes on
    assert sv.running and sv.phase != "aborted"
    answer[0] = True
    with qtbot.waitSignal(sv.session_finished, timeout=30000) as finished:
        sv.abort_button.click()
    assert finished.args[0].status == "aborted" and len(asked) == 4
    asked.clear()
    win.close()  # nothing runs: no question
    assert asked == [] and not win.isVisible()


@pytest.mark.timeout(60)
def test_the_session_time_scale_is_the_simulated_headsets_speed(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    """One speed control: the simulator follows the session's time scale (the source
    panel shows it); any other source gets a demo-only warning instead."""
    from tests.support.sources import PausableSource

    win = make_window()
    _connect_sim(qtbot, win, speed=1.0)
    sv, panel = win.session_view, win.source_panel
    assert panel.sim_speed.isReadOnly()  # shown, not a second control
    first = win.controller.source
    sv.time_scale.setValue(7.0)
    qtbot.waitUntil(lambda: win.controller.source is not None and win.controller.source is not first
                    and win.controller.source.speed == 7.0
                    and str(win.controller.source.status) == "streaming", timeout=20000)
    assert panel.sim_speed.value() == 7.0 and "runs at 7x" in sv.time_scale_note.text()
    assert win.controller.spec == "simulated:0"
    source = PausableSource(loss_timeout_s=5.0)
    win.controller.connect_source(source, spec="pausable")
    qtbot.waitUntil(lambda: win.controller.source is source, timeout=10000)
    assert "demo only" in sv.time_scale_note.text()
    sv.time_scale.setValue(1.0)
    assert sv.time_scale_note.text() == ""


@pytest.mark.timeout(90)
def test_exports_get_a_folder_per_session_and_format_and_dialogs_open_in_the_data_folder(
        qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.controller import canonical_spec
    from app.dirs import user_folder

    store = tmp_path / "store.sqlite"
    sid = fill_labelled_store(store, n_per_class=1, trial_s=2.0)
    win = make_window(store_path=store)
    rv = win.replay_view
    rv.refresh_sessions()
    qtbot.waitUntil(lambda: rv.table.rowCount() == 1, timeout=10000)
    rv.table.selectRow(0)
    out = tmp_path / "exports"
    for _ in range(2):
        task = rv.export("csv", out)
        qtbot.waitUntil(lambda t=task: t.is_done, timeout=60000)
        assert task.error is None
    assert sorted(p.name for p in out.iterdir()) == [f"duygu-session-{sid}-csv", f"duygu-session-{sid}-csv-2"]
    data = user_folder("exports")  # where the export dialog opens: the user's data folder
    assert data.is_dir() and str(data).startswith(os.environ["DUYGU_DATA_DIR"])
    assert "assets" not in data.parts
    assert canonical_spec("simulated") == "simulated:0" == canonical_spec("simulated:0")
    tv = win.training_view  # no confusion matrix yet: no axes with odd scales
    assert not tv.cm_plot.getPlotItem().getAxis("left").isVisible() and tv.cm_placeholder.isVisible()


def test_invalid_participant_is_refused(qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A refused id (it may be a name) starts nothing and never reaches the log."""
    protocol = write_protocol(tmp_path / "protocol", n_per_class=1)
    win = make_window(protocol_path=protocol)
    _connect_sim(qtbot, win)
    sv = win.session_view
    for name in ("Jane Doe", "JaneDoe"):
        sv.participant.setText(name)
        sv.audio.setChecked(False)
        assert sv.start() is None
        qtbot.waitUntil(lambda: any("ids are codes, not names" in n.text for n in win.notes.history), timeout=5000)
        assert not sv.running and sv.start_button.isEnabled() and sv.phase == "idle"
        lines = [sv.log.item(i).text() for i in range(sv.log.count())]
        assert not any(name in text for text in lines + [n.text for n in win.notes.history])


def test_contact_quality_values_map_to_levels() -> None:
    from acquisition.sources.quality import reading_from_sample

    # EmotivPRO's Contact-Quality layout: the timestamp and the battery are never sensors
    labels = ["Timestamp", "BatteryPercent", "Overall", "Signal", "AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2",
              "P8", "T8", "FC6", "F4", "F8", "AF4"]
    values = [1.7e9, 80, 75, 1, 4, 3, 2, 1, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    reading = reading_from_sample(labels, values, "X-Contact-Quality")
    assert reading.levels()[:5] == ["good", "fair", "poor", "bad", "no data"]
    assert reading.battery_percent == 80 and reading.overall == 75 and reading.bad_channels() == ["FC5", "T7"]


@pytest.mark.timeout(120)
def test_a_fault_pauses_the_session_offers_resume_now_and_end_and_it_resumes_by_itself(
        qtbot, make_window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.sources import PausableSource

    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.5, silence_s=0.3)
    win = make_window(protocol_path=protocol)
    source = PausableSource(loss_timeout_s=0.4)
    win.controller.connect_source(source, spec="pausable")
    qtbot.waitUntil(lambda: win.controller.source is source and str(source.status) == "streaming", timeout=10000)
    sv = win.session_view
    win.tabs.setCurrentWidget(sv)
    sv.participant.setText("P05")
    sv.labels_mode.setCurrentIndex(sv.labels_mode.findData("auto"))
    sv.audio.setChecked(False)
    with qtbot.waitSignal(sv.session_finished, timeout=90000) as finished:
        sv.start()
        qtbot.waitUntil(lambda: sv.phase == "music", timeout=20000)
        source.pause()  # the headset goes away
        qtbot.waitUntil(lambda: sv.fault_label.isVisible(), timeout=10000)
        qtbot.waitUntil(lambda: sv.resume_button.text() == "Resume now", timeout=10000)
        assert "resumes by itself" in sv.fault_label.text() and sv.abort_button.text() == "End session"
        assert sv.resume_button.isEnabled() and sv.abort_button.isEnabled()
        sv.resume_button.click()  # "Resume now" while the source is still away: stays paused
        assert sv.phase == "paused"
        source.resume()  # back: nobody clicks anything
        qtbot.waitUntil(lambda: not sv.fault_label.isVisible(), timeout=20000)
    result = finished.args[0]
    assert result.status == "completed" and len(result.trials) == 4 and len(result.interrupted) >= 1
    assert sv.resume_button.text() == "Resume" and sv.abort_button.text() == "Abort"
    assert any("fault" in item for item in (sv.log.item(i).text() for i in range(sv.log.count())))


@pytest.mark.timeout(60)
def test_the_app_publishes_its_marker_stream_from_launch_and_withdraws_it_on_close(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    """LabRecorder can select the marker stream before any session: the window makes it at
    launch, with the stable source_id, and closing the window withdraws it."""
    import pylsl

    from acquisition.session.markers import DEFAULT_MARKER_STREAM, stable_source_id

    win = make_window(markers=True)
    outlet = win.state.marker_outlet
    assert outlet is not None and outlet.name == DEFAULT_MARKER_STREAM
    assert outlet.source_id == stable_source_id(DEFAULT_MARKER_STREAM)
    uid = outlet._outlet.get_info().uid()  # this window's stream (another process may publish the same id)
    deadline = time.monotonic() + 10.0
    while True:
        found = {i.uid(): i for i in pylsl.resolve_byprop("source_id", outlet.source_id, timeout=1.0)}
        if uid in found:
            break
        assert time.monotonic() < deadline, "the marker stream did not appear"
    assert found[uid].type() == "Markers" and found[uid].name() == DEFAULT_MARKER_STREAM
    win.close()
    while uid in {i.uid() for i in pylsl.resolve_byprop("source_id", outlet.source_id, timeout=1.0)}:
        assert time.monotonic() < deadline + 10.0, "the marker stream outlived the window"


@pytest.mark.timeout(60)
def test_a_failing_contact_quality_reader_reaches_the_operator_once(qtbot, make_window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The headset's quality reader fails in its own thread (the network is down): the
    operator gets one notification, not one per retry, and never a silent view."""
    from tests.support.sources import quality_failing_source

    win = make_window(contact_quality=True)
    view = win.headmap_view
    view.set_source(quality_failing_source(monkeypatch))
    qtbot.waitUntil(lambda: any("contact quality:" in n.text and "network is down" in n.text
                                for n in win.notes.history), timeout=10_000)
    view.quality_failed.emit(view.quality.last_error)  # the same error again (direct: same thread): not told twice
    assert len([n for n in win.notes.history if "contact quality:" in n.text]) == 1
    view.set_source(None)


@pytest.mark.timeout(120)
def test_the_quality_view_shows_emotivpro_contact_quality_and_battery(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    """EmotivPRO simulated in another process (`duygu simulate --emotivpro`): the head
    map takes the headset's own levels, with the battery."""
    from tests.support.emotivpro import emotivpro

    with emotivpro("--contact", "4,4,4,3,3,2,1,0,4,4,4,4,4,4", "--battery", "80", "--overall", "75") as prefix:
        win = make_window(contact_quality=True)
        view = win.headmap_view
        win.tabs.setCurrentWidget(view)  # live views redraw while shown
        win.controller.connect_spec(f"lsl:{prefix}-EEG")
        qtbot.waitUntil(lambda: view.reading is not None and view.report is not None
                        and view.report.channels[7].level == "no data", timeout=60_000)
        levels = [c.level for c in view.report.channels]
        assert levels[:9] == ["good", "good", "good", "fair", "fair", "poor", "bad", "no data", "good"]
        # the simulator says so in its stream description: the window marks it simulated
        assert any("simulated by Duygu" in note for note in win.controller.source.info.notes)
        assert win.simulated_badge.isVisible()
        assert "battery 80%" in view.contact_label.text() and "overall 75%" in view.contact_label.text()
        view.mode.setCurrentIndex(1)  # computed from the EEG instead
        view.refresh()
        assert "good" in [c.level for c in view.report.channels] and view.report.channels[7].level != "no data"
