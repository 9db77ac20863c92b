"""GUI benchmarks: redraw rate of the 14-channel, 10 s signal view at 128 Hz (offscreen),
and the GUI thread's CPU share when it redraws at 30 frames per second.

Run with ``duygu bench --only bench_gui``. Qt runs offscreen when there is no display.
"""

from __future__ import annotations

import os
import time

import numpy as np


def _app():  # type: ignore[no-untyped-def]
    from app.gui import display_problem

    if display_problem() is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _spin(seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def run(quick: bool = False) -> list[dict]:
    """FPS of the signal view (pull + setData + a synchronous repaint), and GUI CPU share at 30 FPS."""
    app = _app()
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from app.views.signals import SignalsView

    sim = EpocSimulator(seed=1)
    source = SimulatedEpocSource(seed=1)  # not connected: the benchmark pushes samples itself
    data = sim.generate(128 * 60)
    first = 20 * 128
    source.buffer.push(data[:first], np.arange(first) / 128.0)
    view = SignalsView(window_s=10.0, interval_ms=1000)
    view.resize(1280, 720)
    view.show()
    view.set_source(source)
    view.timer.stop()  # frames are driven by the loop below
    app.processEvents()

    n_frames = 60 if quick else 300
    per_frame = 2  # ~128 Hz / 60 FPS new samples per frame
    pos = first
    view.refresh()
    app.processEvents()
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n_frames):
        chunk = data[pos:pos + per_frame]
        source.buffer.push(chunk, (pos + np.arange(len(chunk))) / 128.0)
        pos = first + (pos - first + per_frame) % (len(data) - first - per_frame)
        view.refresh()  # pull from the ring buffer, setData on the 14 existing curves
        app.processEvents()  # the repaint Qt scheduled (offscreen backing store)
    elapsed = time.perf_counter() - t0
    cpu_s = time.thread_time() - c0
    fps = n_frames / elapsed
    fps_cpu = n_frames / max(cpu_s, 1e-9)
    assert len(view.curves[0].getData()[0]) == 10 * 128

    # GUI thread CPU share while a live simulated source streams and the view redraws at 30 FPS
    live = SimulatedEpocSource(seed=2)
    live.connect()
    try:
        view.timer.setInterval(33)
        view.set_source(live)
        view.timer.start()
        _spin(0.5)
        frames0, cpu0, wall0 = view.frames, time.thread_time(), time.perf_counter()
        _spin(2.0 if quick else 6.0)
        cpu = time.thread_time() - cpu0
        wall = time.perf_counter() - wall0
        frames = view.frames - frames0
    finally:
        view.timer.stop()
        live.disconnect()
        view.close()
    share = 100.0 * cpu / wall
    return [
        {"name": "gui: signal view 14 ch x 10 s @128 Hz, offscreen redraw rate", "value": fps, "unit": "FPS",
         "target": ">= 60 FPS", "ok": fps >= 60.0},
        {"name": "gui: signal view redraws per second of GUI-thread CPU (load-independent)", "value": fps_cpu,
         "unit": "FPS", "target": ">= 60 FPS", "ok": fps_cpu >= 60.0},
        {"name": "gui: main-thread CPU at 30 FPS (live simulated source)", "value": share,
         "unit": "% of one core", "target": None, "ok": None},
        {"name": "gui: frames drawn per second in the 30 FPS run", "value": frames / wall, "unit": "FPS",
         "target": None, "ok": None},
    ]
