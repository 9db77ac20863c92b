"""Helpers for the session-report tests: a stored session on the demo stimuli, small models."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acquisition.channels import SFREQ_HZ

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo"
EMOTIONS = ("happy", "sad", "relaxing", "tense")


@dataclass
class ReportSession:
    """A session written by :func:`write_session`, with what was put in it."""

    store_path: Path
    session_id: int
    trial_ids: list[int]
    stimulus_ids: list[str]
    intended: list[str]
    reported: list[str | None]
    protocol: dict


def demo_protocol(style: str = "bells", music_s: float = 8.0) -> dict:
    """The real demo protocol (paths resolved) cut to one style's 4 stimuli and ``music_s``."""
    from acquisition.session.protocol import load_protocol

    proto = load_protocol(DEMO / "protocol.toml").as_dict()
    proto["stimuli"] = [s for s in proto["stimuli"] if s["genre"] == style]
    proto["music_s"] = float(music_s)
    return proto


REPORT_STRENGTH = 2.0


def write_session(store_path: Path, reported: list[str | None], participant: str = "P01", seed: int = 3,
                  trial_s: float = 8.0, rest_s: float = 2.0, protocol: dict | None = None) -> ReportSession:
    """One finished session: trial k plays stimulus k % 4; the simulated headset is set to
    the reported label (neutral when None) during the trial, neutral in between. The
    effect is strong (:data:`REPORT_STRENGTH`): these tests check the report, not decoding."""
    from acquisition.sources.simulated import EpocSimulator
    from acquisition.store.sqlite import SessionStore

    proto = protocol or demo_protocol()
    sim = EpocSimulator(seed=seed, participant=participant, strength=REPORT_STRENGTH)
    n_trial, n_rest = int(trial_s * SFREQ_HZ), int(rest_s * SFREQ_HZ)
    t0, index = 100.0, 0
    trial_ids, stim_ids, intended = [], [], []
    with SessionStore(store_path) as store:
        sid = store.start_session(participant, proto, f"simulated:{seed}", {"kind": "simulated"})
        for k, label in enumerate(reported):
            stim = proto["stimuli"][k % len(proto["stimuli"])]
            sim.set_state(label or "neutral")
            store.append_eeg(sid, sim.generate(n_trial), t0 + (index + np.arange(n_trial)) / SFREQ_HZ, index)
            tid = store.add_trial(sid, stim["id"], stim["emotion"], t0 + index / SFREQ_HZ,
                                  t0 + (index + n_trial) / SFREQ_HZ, index, index + n_trial)
            if label is not None:
                store.set_trial_label(tid, label)
            index += n_trial
            sim.set_state("neutral")
            store.append_eeg(sid, sim.generate(n_rest), t0 + (index + np.arange(n_rest)) / SFREQ_HZ, index)
            index += n_rest
            trial_ids.append(tid)
            stim_ids.append(stim["id"])
            intended.append(stim["emotion"])
        store.finish_session(sid)
    return ReportSession(store_path, sid, trial_ids, stim_ids, intended, list(reported), proto)


def write_music_library(root: Path, styles: tuple[str, ...] = ("organ", "plucks", "strings"),
                        folders: dict[str, str] | None = None) -> Path:
    """``root/<folder>/<style>.ogg`` copied from the demo stimuli; ``folders`` renames emotions."""
    folders = folders or {e: e for e in EMOTIONS}
    for style in styles:
        for emotion, folder in folders.items():
            (root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(DEMO / f"{style}-{emotion}.ogg", root / folder / f"{style}.ogg")
    return root


def train_music(root: Path, out: Path, classifier: str = "logreg", max_duration_s: float = 12.0) -> Path:
    """Train and save a small music model on a library folder."""
    from models.music import load_library, train_music_model

    train_music_model(load_library(root, max_duration_s=max_duration_s), classifier).save(out)
    return out


def train_eeg(out: Path, seed: int = 1, subject: str = "train", channels: list[str] | None = None,
              participant: str = "P01") -> Path:
    """Train and save a small EEG bundle on another session of simulated participant ``participant``.

    ``channels`` overrides the channel list in the metadata (a bundle for another headset).
    """
    from models.bundle import save_bundle, train_bundle
    from models.datasets import from_trials
    from tests.support.models_data import simulated_trials

    bundle = train_bundle(from_trials(simulated_trials(n_per_state=2, trial_s=8.0, seed=seed, subject=subject,
                                                  participant=participant, strength=REPORT_STRENGTH)),
                          "lda")
    meta = dict(bundle.meta)
    if channels is not None:
        meta["channels"] = channels
    save_bundle(out, bundle.estimator, meta)
    return out


def build_models_once(root: Path, reported: list[str | None]) -> dict:
    """The session, EEG bundle and music model of the report tests, built once in ``root``.

    Several xdist workers may call this with the same ``root``: the first builds under a
    file lock, the others wait and reuse (the session is only read afterwards).
    """
    import fcntl
    import json

    root.mkdir(parents=True, exist_ok=True)
    done = root / "env.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                session = write_session(root / "store.sqlite", reported)
                train_eeg(root / "eeg.skops")
                train_music(write_music_library(root / "library"), root / "music.skops")
                fields = {**session.__dict__, "store_path": str(session.store_path)}
                done.write_text(json.dumps(fields))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    fields = json.loads(done.read_text())
    fields["store_path"] = Path(fields["store_path"])
    return {"root": root, "session": ReportSession(**fields), "eeg": root / "eeg.skops", "music": root / "music.skops"}
