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


def fill_labelled_store(path: Path, n_per_class: int = 3, trial_s: float = 8.0, seed: int = 0) -> int:
    """A store with one completed session of labelled simulated trials; returns its id.

    The simulator's hidden state follows each trial's label, written through the store
    API directly (no threads), so training on it is quick and meaningful.
    """
    from acquisition.channels import SFREQ_HZ
    from acquisition.sources.simulated import EpocSimulator
    from acquisition.store.sqlite import SessionStore

    sim = EpocSimulator(seed)
    store = SessionStore(path)
    try:
        sid = store.start_session("P01", {"name": "gui-test"}, f"simulated:{seed}", {"kind": "simulated"})
        index, t0 = 0, 1000.0
        n = int(trial_s * SFREQ_HZ)
        for k in range(n_per_class):
            for emotion in EMOTIONS:
                sim.set_state(emotion)
                data = sim.generate(n)
                times = t0 + (index + np.arange(n)) / SFREQ_HZ
                store.append_eeg(sid, data, times, index)
                tid = store.add_trial(sid, f"{emotion}-{k}", emotion, float(times[0]), float(times[-1]),
                                      index, index + n)
                store.set_trial_label(tid, emotion)
                index += n
        store.finish_session(sid)
        return sid
    finally:
        store.close()
