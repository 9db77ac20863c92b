"""Audio test data for the music tests: tones, a labelled library and a folder of bad files.

The labelled library uses the demo-stimulus synthesiser (:mod:`processing.synth`), whose
pieces follow a target emotion (mode, tempo, brightness, loudness, dissonance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SFREQ_HZ = 22050
#: rate of the synthesised library (lower than the analysis rate: cheaper, and resampling is exercised)
LIBRARY_SFREQ_HZ = 16000


def tone(freq_hz: float = 440.0, duration_s: float = 5.0, sfreq_hz: int = SFREQ_HZ, amp: float = 0.3,
         beat_hz: float = 2.0) -> np.ndarray:
    """A sine with an amplitude pulse every 1/beat_hz s (so it has onsets and a tempo)."""
    t = np.arange(int(duration_s * sfreq_hz)) / sfreq_hz
    envelope = np.exp(-8.0 * ((t * beat_hz) % 1.0))
    return (amp * envelope * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def clicks(bpm: float, duration_s: float, rng: np.random.Generator, sfreq_hz: int = SFREQ_HZ,
           jitter_s: float | None = 0.0) -> np.ndarray:
    """Noise clicks (5 ms decay) every 60/bpm s; ``jitter_s=None`` puts them at uniformly
    random times instead (the same number of clicks, no periodicity)."""
    n = int(duration_s * sfreq_hz)
    times = np.arange(0.0, duration_s - 0.05, 60.0 / bpm)
    if jitter_s is None:
        times = np.sort(rng.uniform(0.0, duration_s - 0.05, times.size))
    elif jitter_s > 0:
        times = np.clip(times + rng.normal(0.0, jitter_s, times.size), 0.0, duration_s - 0.05)
    click = rng.standard_normal(400) * np.exp(-np.arange(400) / (0.005 * sfreq_hz))
    y = 1e-3 * rng.standard_normal(n)
    for t in times:
        i = int(t * sfreq_hz)
        y[i:i + click.size] += 0.3 * click[:n - i]
    return y.astype(np.float32)


def write_library(root: Path, duration_s: float = 12.0, styles: tuple[str, ...] | None = None,
                  fmt: str = "wav") -> Path:
    """``root/<emotion>/<style>.<fmt>``: the synthesiser's 4 emotions x styles."""
    from processing import synth

    styles = styles or synth.STYLES
    for s, style in enumerate(styles):
        for e, emotion in enumerate(synth.EMOTIONS):
            x = synth.synthesize(emotion, style, seed=500 + 10 * s + e, duration_s=duration_s,
                                 sfreq_hz=LIBRARY_SFREQ_HZ, root_midi=synth.ROOTS_MIDI[(s + e) % len(synth.ROOTS_MIDI)])
            folder = root / emotion
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{style}.{fmt}", x, LIBRARY_SFREQ_HZ)
    return root


#: file name -> what the batch must say about it ("error", "warning" or "ok")
BAD_FOLDER_EXPECTED = {
    "corrupt.wav": "error",
    "notes.txt": "error",
    "silent.wav": "warning",
    "short_1s.wav": "warning",
    "eight_channels.wav": "ok",
    "hires_192k.flac": "ok",
    "good.ogg": "ok",
}


def write_bad_folder(root: Path) -> Path:
    """A folder with a corrupt file, a silent file, a 1 s file, an 8-channel file, a 192 kHz
    file, a non-audio file and one ordinary file (see :data:`BAD_FOLDER_EXPECTED`)."""
    root.mkdir(parents=True, exist_ok=True)
    good = tone(440.0, 6.0)
    sf.write(root / "good.ogg", good, SFREQ_HZ, format="OGG", subtype="VORBIS")
    sf.write(root / "silent.wav", np.zeros(5 * SFREQ_HZ, np.float32), SFREQ_HZ)
    sf.write(root / "short_1s.wav", tone(440.0, 1.0), SFREQ_HZ)
    channels = np.stack([tone(220.0 * (1 + k / 4), 6.0) for k in range(8)], axis=1)
    sf.write(root / "eight_channels.wav", channels, SFREQ_HZ)
    sf.write(root / "hires_192k.flac", tone(440.0, 6.0, sfreq_hz=192000), 192000, subtype="PCM_24")
    # a RIFF/WAVE header whose format chunk is garbage
    rng = np.random.default_rng(0)
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x80\x00\x00WAVEfmt " + rng.bytes(4000))
    (root / "notes.txt").write_text("not audio: the stimulus list is in protocol.toml\n", encoding="utf-8")
    return root

