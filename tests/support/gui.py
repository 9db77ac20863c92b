"""Helpers for the GUI tests: a short protocol with real audio files, QSettings in tmp."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EMOTIONS = ("happy", "sad", "relaxing", "tense")


def write_protocol(folder: Path, n_per_class: int = 3, music_s: float = 30.0, silence_s: float = 10.0,
                   sam: bool = False) -> Path:
    """A protocol with ``n_per_class`` stimuli per emotion (short sine WAVs), fixed order."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sr = 8000
    lines = ["[protocol]", 'name = "gui-test"', f"music_s = {music_s}", f"silence_s = {silence_s}", 'order = "fixed"',
             f"sam = {'true' if sam else 'false'}", ""]
    t = np.arange(int(sr * (music_s + 1.0))) / sr
    for k in range(n_per_class):
        for j, emotion in enumerate(EMOTIONS):
            name = f"{emotion}-{k}.wav"
            sf.write(folder / name, 0.1 * np.sin(2 * np.pi * (220 + 40 * j) * t).astype(np.float32), sr)
            lines += ["[[stimuli]]", f'id = "{emotion}-{k}"', f'path = "{name}"', f'genre = "g{k}"',
                      f'emotion = "{emotion}"', ""]
    path = folder / "protocol.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def qsettings_in(folder: Path):  # type: ignore[no-untyped-def]
    """A QSettings file under ``folder`` (window layout of one test)."""
    from PySide6.QtCore import QSettings

    return QSettings(str(folder / "duygu-gui.ini"), QSettings.Format.IniFormat)
