"""GUI benchmarks: redraw rate of the 14-channel, 10 s signal view at 128 Hz (offscreen),
and the GUI thread's CPU share when it redraws at 30 frames per second.

The signal view is measured in both display modes: *sweep* (the default: a cursor overwrites
the oldest samples and only the strip that changed is repainted, as on a clinical monitor)
and *scroll* (everything moves each frame, like the peer).

The peer is a bare pyqtgraph ``PlotWidget`` with 14 curves updated by ``setData`` every
frame (pyqtgraph's own ``PlotSpeedTest`` pattern: ``plot()`` curves, the newest 10 s pulled
from the same kind of ring buffer and offset per channel), the same size, measured the same
two ways in the same run: frames drawn per second of main-thread CPU with the loop driving
the frames, and the main thread's CPU share while a live simulated source streams and a
33 ms timer redraws (30 FPS). Rows ``gui ...: duygu/pyqtgraph`` are the ratios.

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


class _BarePlot:
    """The peer: a PlotWidget, 14 ``plot()`` curves, ``setData`` of the newest window."""

    def __init__(self, window_s: float = 10.0) -> None:
        import pyqtgraph as pg

        self.widget = pg.PlotWidget()
        self.widget.resize(1280, 720)
        self.curves = [self.widget.plot(pen=pg.mkPen(pg.intColor(i, 14), width=1)) for i in range(14)]
        self.n = round(window_s * 128)
        self.source = None
        self.frames = 0
        self.offsets = 13 - np.arange(14)

    def refresh(self) -> None:
        chunk = self.source.buffer.latest(n_samples=self.n)  # type: ignore[attr-defined]
        if len(chunk.data) < 2:
            return
        y = (chunk.data - chunk.data.mean(axis=0)) / 100.0 + self.offsets
        t = (np.arange(len(y)) - (len(y) - 1)) / 128.0
        for i, curve in enumerate(self.curves):
            curve.setData(t, y[:, i])
        self.frames += 1


def _loop_fps(app, refresh, push, n_frames: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(frames per second of wall time, frames per second of main-thread CPU)."""
    refresh()
    app.processEvents()
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n_frames):
        push()
        refresh()
        app.processEvents()  # the repaint Qt scheduled (offscreen backing store)
    return n_frames / (time.perf_counter() - t0), n_frames / max(time.thread_time() - c0, 1e-9)


def _share_at_30fps(refresh, frames, seconds: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(main-thread CPU %, frames per second) with a 33 ms timer calling ``refresh``."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.setInterval(33)
    timer.timeout.connect(refresh)
    timer.start()
    try:
        _spin(0.5)
        f0, c0, w0 = frames(), time.thread_time(), time.perf_counter()
        _spin(seconds)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
        return 100.0 * cpu / wall, (frames() - f0) / wall
    finally:
        timer.stop()


def peer_rows(app, quick: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The bare PlotWidget's redraw rate per CPU second and its CPU share at 30 FPS."""
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource

    sim = EpocSimulator(seed=1)
    source = SimulatedEpocSource(seed=1)
    data = sim.generate(128 * 60)
    first = 20 * 128
    source.buffer.push(data[:first], np.arange(first) / 128.0)
    bare = _BarePlot()
    bare.source = source
    bare.widget.show()
    app.processEvents()
    pos = [first]

    def push() -> None:
        a = pos[0]
        chunk = data[a:a + 2]
        source.buffer.push(chunk, (a + np.arange(len(chunk))) / 128.0)
        pos[0] = first + (a - first + 2) % (len(data) - first - 2)

    fps, fps_cpu = _loop_fps(app, bare.refresh, push, 60 if quick else 300)
    live = SimulatedEpocSource(seed=2)
    live.connect()
    try:
        bare.source = live
        share, frames = _share_at_30fps(bare.refresh, lambda: bare.frames, 2.0 if quick else 6.0)
    finally:
        live.disconnect()
        bare.widget.close()
    return {"fps": fps, "fps_cpu": fps_cpu, "share": share, "frames": frames}


def duygu_rows(app, mode: str, quick: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The signal view in ``mode`` ("sweep" or "scroll"): redraws per CPU second with the loop
    driving the frames, and its CPU share at 30 FPS on a live simulated source."""
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from app.views.signals import SignalsView

    sim = EpocSimulator(seed=1)
    source = SimulatedEpocSource(seed=1)  # not connected: the benchmark pushes samples itself
    data = sim.generate(128 * 60)
    first = 20 * 128
    source.buffer.push(data[:first], np.arange(first) / 128.0)
    view = SignalsView(window_s=10.0, interval_ms=1000)
    view.display.setCurrentIndex(view.display.findData(mode))
    view.resize(1280, 720)
    view.show()
    view.set_source(source)
    view.timer.stop()  # frames are driven by the loop below
    app.processEvents()
    assert view.traces.mode == mode and view.traces.n == 10 * 128 and view.traces.filled == 10 * 128
    pos = [first]
    per_frame = 2  # ~128 Hz / 60 FPS new samples per frame

    def push() -> None:
        a = pos[0]
        chunk = data[a:a + per_frame]
        source.buffer.push(chunk, (a + np.arange(len(chunk))) / 128.0)
        pos[0] = first + (a - first + per_frame) % (len(data) - first - per_frame)

    fps, fps_cpu = _loop_fps(app, view.refresh, push, 60 if quick else 300)
    live = SimulatedEpocSource(seed=2)
    live.connect()
    try:
        view.timer.setInterval(33)
        view.set_source(live)
        share, frames = _share_at_30fps(view.refresh, lambda: view.frames, 2.0 if quick else 6.0)
    finally:
        view.timer.stop()
        live.disconnect()
        view.close()
    return {"fps": fps, "fps_cpu": fps_cpu, "share": share, "frames": frames}


def run(quick: bool = False) -> list[dict]:
    """Redraw rate and GUI CPU share at 30 FPS of the signal view (sweep, the default, and
    scroll) and of the bare PlotWidget."""
    app = _app()
    sweep = duygu_rows(app, "sweep", quick)
    scroll = duygu_rows(app, "scroll", quick)
    peer = peer_rows(app, quick)

    def ratio(name: str, got: dict[str, float], key: str, unit: str, target: str | None = None,
              ok: bool | None = None) -> dict:
        return {"name": name, "value": got[key] / peer[key], "unit": "x", "target": target, "ok": ok,
                "duygu": got[key], "peer": peer[key], "peer_name": "pyqtgraph PlotWidget", "measure_unit": unit}

    return [
        ratio("gui redraws per CPU second, 14 ch x 10 s: duygu/pyqtgraph", sweep, "fps_cpu", "FPS per CPU s"),
        ratio("gui main-thread cpu at 30 FPS, 14 ch x 10 s: duygu/pyqtgraph", sweep, "share", "% of a core",
              "duygu <= 15% of a core", bool(sweep["share"] <= 15.0)),
        ratio("gui frames per second in the 30 FPS runs: duygu/pyqtgraph", sweep, "frames", "FPS"),
        ratio("gui redraws per CPU second, scroll mode: duygu/pyqtgraph", scroll, "fps_cpu", "FPS per CPU s"),
        ratio("gui main-thread cpu at 30 FPS, scroll mode: duygu/pyqtgraph", scroll, "share", "% of a core"),
        {"name": "gui: signal view 14 ch x 10 s @128 Hz, offscreen redraw rate", "value": sweep["fps"],
         "unit": "FPS", "target": ">= 60 FPS", "ok": sweep["fps"] >= 60.0},
        {"name": "gui: signal view redraws per second of GUI-thread CPU (load-independent)",
         "value": sweep["fps_cpu"], "unit": "FPS", "target": ">= 60 FPS", "ok": sweep["fps_cpu"] >= 60.0},
        {"name": "gui: main-thread CPU at 30 FPS (live simulated source)", "value": sweep["share"],
         "unit": "% of one core", "target": None, "ok": None},
        {"name": "gui: frames drawn per second in the 30 FPS run", "value": sweep["frames"], "unit": "FPS",
         "target": None, "ok": None},
    ]
