"""Synthetic, royalty-free demo music whose features follow a target emotion.

**These pieces are synthesised, not recorded music.** They exist so that Duygu's demo
protocol (16 stimuli, 4 "genres" x 4 emotions, like the EEG paper's design) can be run
and shipped with no licensing question. The four genres are synthetic *styles*
(timbres): ``bells`` (inharmonic partials), ``plucks`` (fast-decaying harmonic tones),
``organ`` (odd harmonics, sustained) and ``strings`` (all harmonics, slow attack, vibrato).

The target emotion sets the musical features, following the usual findings of music
emotion research (mode, tempo, register, brightness, loudness, dissonance):

=========  ======  =====  ==========================  ==================================
emotion    mode    bpm    texture                      timbre / loudness
=========  ======  =====  ==========================  ==================================
happy      major   140    eighth-note melody, high,    bright (slow harmonic roll-off),
                          kick + hi-hat                 medium-loud
sad        minor    60    slow quarter notes, low      dark (steep roll-off, low-pass),
                                                        soft
relaxing   major    66    consonant maj7 pads, sparse  soft, long attacks, no drums
                          melody
tense      none    160    tritones and clusters,       loud, noise bursts, saturated
                          chromatic sixteenths
=========  ======  =====  ==========================  ==================================

Everything is vectorised numpy and fully deterministic (one seed per piece). Run
``python -m processing.synth assets/demo`` to (re)create ``assets/demo``: 16 mono
Ogg Vorbis files at 22.05 kHz and ``protocol.toml``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

EMOTIONS = ("happy", "sad", "relaxing", "tense")
STYLES = ("bells", "plucks", "organ", "strings")


@dataclass(frozen=True)
class EmotionParams:
    """Musical parameters of one target emotion."""

    bpm: float
    chords: tuple[tuple[int, ...], ...]  # semitones above the root, one chord per change
    beats_per_chord: float
    scale: tuple[int, ...]  # melody pitch classes (semitones)
    melody_step_beats: float  # melody note grid
    melody_rest_p: float  # probability of a rest on a grid step
    melody_octave: int  # MIDI octave offset of the melody
    rolloff: float  # harmonic k has amplitude k**-rolloff (higher = darker)
    attack_s: float
    rms_dbfs: float
    drums: str  # "", "pop" or "noise"
    lowpass_hz: float


PARAMS: dict[str, EmotionParams] = {
    "happy": EmotionParams(
        bpm=140.0, chords=((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)), beats_per_chord=4,
        scale=(0, 2, 4, 7, 9), melody_step_beats=0.5, melody_rest_p=0.15, melody_octave=6,
        rolloff=0.9, attack_s=0.01, rms_dbfs=-17.0, drums="pop", lowpass_hz=9000.0,
    ),
    "sad": EmotionParams(
        bpm=60.0, chords=((0, 3, 7), (8, 12, 15), (5, 8, 12), (7, 10, 14)), beats_per_chord=4,
        scale=(0, 2, 3, 5, 7, 8, 10), melody_step_beats=1.0, melody_rest_p=0.25, melody_octave=4,
        rolloff=2.4, attack_s=0.08, rms_dbfs=-27.0, drums="", lowpass_hz=1400.0,
    ),
    "relaxing": EmotionParams(
        bpm=66.0, chords=((0, 4, 7, 11), (5, 9, 12, 16), (9, 12, 16, 19), (0, 2, 7, 14)),
        beats_per_chord=8, scale=(0, 2, 4, 7, 9), melody_step_beats=2.0, melody_rest_p=0.45,
        melody_octave=5, rolloff=1.8, attack_s=0.9, rms_dbfs=-25.0, drums="", lowpass_hz=3000.0,
    ),
    "tense": EmotionParams(
        bpm=160.0, chords=((0, 6, 11), (0, 1, 6), (1, 7, 8), (0, 6, 10, 11)), beats_per_chord=2,
        scale=tuple(range(12)), melody_step_beats=0.25, melody_rest_p=0.1, melody_octave=5,
        rolloff=0.7, attack_s=0.005, rms_dbfs=-13.0, drums="noise", lowpass_hz=10000.0,
    ),
}

#: partial frequency ratios and per-partial decay (1/s) of each style
STYLE_PARTIALS: dict[str, NDArray[np.float64]] = {
    "bells": np.array([1.0, 2.76, 5.40, 8.93, 13.34]),
    "plucks": np.arange(1.0, 9.0),
    "organ": np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0]),
    "strings": np.arange(1.0, 9.0),
}
STYLE_DECAY_PER_S: dict[str, float] = {"bells": 1.2, "plucks": 3.5, "organ": 0.0, "strings": 0.1}
ROOTS_MIDI = (57, 60, 62, 55)  # A3, C4, D4, G3: one per piece of a style


def midi_hz(note: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """MIDI note number to frequency in Hz (A4 = 69 = 440 Hz)."""
    return np.asarray(440.0 * 2.0 ** ((np.asarray(note, dtype=float) - 69.0) / 12.0))


def _tone(freq_hz: float, dur_s: float, amp: float, style: str, p: EmotionParams, sfreq_hz: float,
          rng: np.random.Generator) -> NDArray[np.float64]:
    """One note: additive partials of the style, shaped by the emotion's roll-off and attack."""
    n = max(1, int(dur_s * sfreq_hz))
    t = np.arange(n) / sfreq_hz
    ratios = STYLE_PARTIALS[style]
    freqs = freq_hz * ratios
    keep = freqs < 0.45 * sfreq_hz
    ratios, freqs = ratios[keep], freqs[keep]
    k = np.arange(1, len(freqs) + 1)
    amps = k ** -p.rolloff
    decay = STYLE_DECAY_PER_S[style] * (1 + 0.5 * (k - 1))  # upper partials fade faster
    phase = rng.uniform(0, 2 * np.pi, len(freqs))
    vib = 0.004 * np.sin(2 * np.pi * 5.5 * t) if style == "strings" else 0.0
    arg = 2 * np.pi * freqs[:, None] * (t + vib / (2 * np.pi * 5.5))[None, :] + phase[:, None]
    partials = amps[:, None] * np.exp(-decay[:, None] * t[None, :]) * np.sin(arg)
    x = partials.sum(axis=0) / amps.sum()
    attack = np.minimum(1.0, t / max(p.attack_s, 1.0 / sfreq_hz))
    release_s = min(0.05 + p.attack_s * 0.5, dur_s / 3)
    release = np.clip((dur_s - t) / release_s, 0.0, 1.0)
    return amp * x * attack * release


def _add(buf: NDArray[np.float64], start_s: float, x: NDArray[np.float64], sfreq_hz: float) -> None:
    i = int(start_s * sfreq_hz)
    if i >= len(buf):
        return
    m = min(len(x), len(buf) - i)
    buf[i:i + m] += x[:m]


def _drums(kind: str, n: int, beat_s: float, sfreq_hz: float, rng: np.random.Generator) -> NDArray[np.float64]:
    out = np.zeros(n)
    if not kind:
        return out
    kick_t = np.arange(int(0.18 * sfreq_hz)) / sfreq_hz
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 18)
    hat_n = int((0.03 if kind == "pop" else 0.07) * sfreq_hz)
    step = beat_s / (2 if kind == "pop" else 4)
    n_steps = int(n / sfreq_hz / step)
    for j in range(n_steps):
        t0 = j * step
        sub = j % (2 if kind == "pop" else 4)
        if sub == 0 and (kind == "noise" or (j // 2) % 2 == 0):
            _add(out, t0, 0.9 * kick, sfreq_hz)
        noise = rng.standard_normal(hat_n)
        if kind == "pop":
            noise = np.diff(noise, prepend=0.0) * 0.5  # bright: high-passed
            gain = 0.25
        else:
            gain = 0.55 if rng.random() < 0.6 else 0.2
        _add(out, t0, gain * noise * np.exp(-np.arange(hat_n) / (0.25 * hat_n)), sfreq_hz)
    return out


def _lowpass(x: NDArray[np.float64], cutoff_hz: float, sfreq_hz: float) -> NDArray[np.float64]:
    from scipy.signal import butter, sosfilt

    if cutoff_hz >= 0.45 * sfreq_hz:
        return x
    return np.asarray(sosfilt(butter(2, cutoff_hz, fs=sfreq_hz, output="sos"), x))


def synthesize(emotion: str, style: str, seed: int = 0, duration_s: float = 32.0,
               sfreq_hz: float = 22050.0, root_midi: int = 57) -> NDArray[np.float32]:
    """Synthesise one mono piece.

    Parameters
    ----------
    emotion : {"happy", "sad", "relaxing", "tense"}
        Target emotion; sets mode, tempo, register, brightness, loudness, dissonance.
    style : {"bells", "plucks", "organ", "strings"}
        Timbre (the synthetic "genre").
    seed : int
        Seed of the melody and noise (deterministic output).
    duration_s, sfreq_hz : float
        Length and rate.
    root_midi : int
        Key (MIDI note of the tonic).

    Returns
    -------
    ndarray, shape (n_samples,), float32, peak below 1
    """
    if emotion not in PARAMS:
        raise ValueError(f"emotion must be one of {', '.join(EMOTIONS)}, got {emotion!r}")
    if style not in STYLE_PARTIALS:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    p = PARAMS[emotion]
    rng = np.random.default_rng(seed)
    n = int(duration_s * sfreq_hz)
    beat_s = 60.0 / p.bpm
    chord_s = beat_s * p.beats_per_chord
    harmony = np.zeros(n)
    bass = np.zeros(n)
    melody = np.zeros(n)
    n_chords = int(np.ceil(duration_s / chord_s))
    for c in range(n_chords):
        chord = p.chords[c % len(p.chords)]
        t0 = c * chord_s
        base = root_midi - 12
        for interval in chord:
            _add(harmony, t0, _tone(float(midi_hz(base + interval)), chord_s, 0.35, style, p, sfreq_hz, rng), sfreq_hz)
        hits = int(p.beats_per_chord) if emotion in ("happy", "tense") else 1
        for b in range(hits):
            dur = beat_s * (0.8 if hits > 1 else p.beats_per_chord)
            _add(bass, t0 + b * beat_s, _tone(float(midi_hz(base - 12 + chord[0])), dur, 0.5, style, p, sfreq_hz, rng), sfreq_hz)
    step_s = beat_s * p.melody_step_beats
    n_steps = int(duration_s / step_s)
    degree = 0
    scale = np.array(p.scale)
    for j in range(n_steps):
        move = int(rng.integers(-2, 3)) if emotion != "tense" else int(rng.integers(-7, 8))
        degree = int(np.clip(degree + move, -len(scale), 2 * len(scale)))
        if rng.random() < p.melody_rest_p:
            continue
        octave, pc = divmod(degree, len(scale))
        note = 12 * p.melody_octave + (root_midi % 12) + 12 * octave + int(scale[pc])
        dur = step_s * (0.5 if emotion == "tense" else 0.95)
        _add(melody, j * step_s, _tone(float(midi_hz(note)), dur, 0.6, style, p, sfreq_hz, rng), sfreq_hz)
    x = harmony + bass + melody
    x = _lowpass(x, p.lowpass_hz, sfreq_hz)
    x = x + _drums(p.drums, n, beat_s, sfreq_hz, rng)
    if emotion == "tense":
        noise = rng.standard_normal(n) * 0.08
        x = x + noise
    x = x / max(float(np.sqrt(np.mean(x**2))), 1e-9) * 10 ** (p.rms_dbfs / 20)
    if emotion == "tense":
        x = np.tanh(2.0 * x) / 2.0  # saturation: loud and rough
    fade = int(0.5 * sfreq_hz)
    ramp = np.linspace(0.0, 1.0, fade)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    peak = float(np.max(np.abs(x)))
    if peak > 0.95:
        x *= 0.95 / peak
    return x.astype(np.float32)


def demo_pieces() -> list[dict[str, object]]:
    """The 16 demo pieces: id, style, emotion, seed, root (4 styles x 4 emotions)."""
    pieces = []
    for s, style in enumerate(STYLES):
        for e, emotion in enumerate(EMOTIONS):
            pieces.append({
                "id": f"{style}-{emotion}",
                "style": style,
                "emotion": emotion,
                "seed": 1000 + 10 * s + e,
                "root_midi": ROOTS_MIDI[(s + e) % len(ROOTS_MIDI)],
            })
    return pieces


def _protocol_toml(pieces: list[dict[str, object]], ext: str) -> str:
    lines = [
        "# Duygu demo protocol: 16 SYNTHETIC pieces (4 synthetic styles x 4 target emotions),",
        "# generated by `python -m processing.synth assets/demo`. Not recorded music;",
        "# royalty-free by construction. Schema: docs/PROTOCOL.md.",
        "",
        "[protocol]",
        'name = "duygu-demo"',
        'description = "Synthetic demo stimuli (processing/synth.py): genres are synthetic styles; features follow the target emotion."',
        "synthetic = true",
        "music_s = 30",
        "silence_s = 10",
        "baseline_s = 30",
        'order = "random"',
        "seed = 2026",
        'labels = ["happy", "sad", "relaxing", "tense"]',
        "sam = false",
    ]
    for piece in pieces:
        lines += [
            "",
            "[[stimuli]]",
            f'id = "{piece["id"]}"',
            f'path = "{piece["id"]}.{ext}"',
            f'genre = "{piece["style"]}"',
            f'emotion = "{piece["emotion"]}"',
            "start_s = 1.0",
            f'title = "Synthetic {piece["style"]} ({piece["emotion"]})"',
            'credit = "Duygu processing/synth.py, generated, public domain (CC0)"',
        ]
    return "\n".join(lines) + "\n"


def write_demo(out_dir: str | Path, duration_s: float = 32.0, sfreq_hz: float = 22050.0,
               fmt: str = "ogg") -> list[Path]:
    """Write the 16 demo pieces and ``protocol.toml`` into ``out_dir``; return the paths."""
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pieces = demo_pieces()
    paths = []
    for piece in pieces:
        x = synthesize(str(piece["emotion"]), str(piece["style"]), seed=int(piece["seed"]),  # type: ignore[call-overload]
                       duration_s=duration_s, sfreq_hz=sfreq_hz, root_midi=int(piece["root_midi"]))  # type: ignore[call-overload]
        path = out / f"{piece['id']}.{fmt}"
        if fmt == "ogg":
            sf.write(str(path), x, int(sfreq_hz), format="OGG", subtype="VORBIS", compression_level=0.6)
        else:
            sf.write(str(path), x, int(sfreq_hz), format=fmt.upper())
        paths.append(path)
    protocol = out / "protocol.toml"
    protocol.write_text(_protocol_toml(pieces, fmt), encoding="utf-8")
    paths.append(protocol)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processing.synth", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="assets/demo")
    parser.add_argument("--duration-s", type=float, default=32.0)
    parser.add_argument("--sfreq-hz", type=float, default=22050.0)
    parser.add_argument("--format", choices=("ogg", "flac", "wav"), default="ogg")
    args = parser.parse_args(argv)
    for path in write_demo(args.out_dir, args.duration_s, args.sfreq_hz, args.format):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
