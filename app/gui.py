"""Start the desktop app: display check, QApplication, main window, default source."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Exit status when there is no display (the Makefile treats it as a clean exit).
NO_DISPLAY_STATUS = 3
_SCREENLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can be shown here, or ``None`` if one can.

    On Linux a window needs ``DISPLAY`` (X11) or ``WAYLAND_DISPLAY``, unless
    ``QT_QPA_PLATFORM`` names a platform that needs no display server (``offscreen``…).
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if qpa and qpa not in ("xcb", "wayland", "wayland-egl"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    if qpa:
        return f"QT_QPA_PLATFORM={qpa} but neither DISPLAY nor WAYLAND_DISPLAY is set"
    return "neither DISPLAY nor WAYLAND_DISPLAY is set"


def main_gui(source: str | None = None, connect: bool = True, protocol: str | None = None,
             store: str | None = None, labels_fullscreen: bool = False,
             quit_after_s: float | None = None) -> int:
    """Run the app until its window closes; returns the exit status."""
    problem = display_problem()
    if problem is not None:
        print(f"no display found: {problem}; try `duygu demo --headless` "
              "(or QT_QPA_PLATFORM=offscreen, or xvfb-run duygu gui)", file=sys.stderr)
        return NO_DISPLAY_STATUS

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from acquisition.settings import load_settings
    from acquisition.sources.spec import parse_source_spec
    from app.main_window import MainWindow

    settings = load_settings()
    spec = source or settings.default_source
    parse_source_spec(spec)  # a bad spec is a one-line error before any window opens
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("duygu")
    app.setOrganizationName("Duygu")
    window = MainWindow(settings=settings, store_path=Path(store) if store else None,
                        protocol_path=Path(protocol) if protocol else None)
    window.show()
    if connect:
        window.connect_default(spec)
    if labels_fullscreen and window.session_view is not None:
        window.session_view.open_label_window()
    if quit_after_s is not None:
        QTimer.singleShot(int(quit_after_s * 1000), window.close)
    status = app.exec()
    return int(status)
