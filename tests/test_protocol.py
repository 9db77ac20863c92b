"""Protocol files: schema, errors with lines and names, balanced order, preflight."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acquisition.errors import ProtocolError
from acquisition.session.protocol import (
    DEFAULT_LABELS,
    balanced_order,
    load_protocol,
    parse_protocol,
    preflight,
    read_segment,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo" / "protocol.toml"


def _tone(path: Path, seconds: float, sfreq: int = 22050, fmt: str | None = None) -> Path:
    t = np.arange(int(seconds * sfreq)) / sfreq
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sfreq, format=fmt)
    return path


def _protocol(folder: Path, stimuli: list[dict[str, object]], head: str = "music_s = 2\nsilence_s = 1") -> Path:
    lines = ["[protocol]", head]
    for s in stimuli:
        lines.append("[[stimuli]]")
        lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in s.items()]
    path = folder / "p.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_demo_protocol_loads_with_defaults_and_16_stimuli() -> None:
    p = load_protocol(DEMO)
    assert len(p.stimuli) == 16
    assert p.labels == DEFAULT_LABELS
    assert p.synthetic is True
    assert (p.music_s, p.silence_s, p.baseline_s, p.order) == (30.0, 10.0, 30.0, "random")
    assert Counter(s.genre for s in p.stimuli) == {g: 4 for g in ("bells", "plucks", "organ", "strings")}
    assert Counter(s.emotion for s in p.stimuli) == {e: 4 for e in DEFAULT_LABELS}
    assert all(s.path.is_file() and s.path.is_absolute() for s in p.stimuli)


def test_defaults_when_fields_are_omitted(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", 1.0)
    p = parse_protocol('[[stimuli]]\nid = "a"\npath = "a.wav"\ngenre = "g"\nemotion = "sad"\n', base_dir=tmp_path)
    assert (p.music_s, p.silence_s, p.baseline_s, p.order, p.labels, p.sam) == (
        30.0, 10.0, 0.0, "fixed", DEFAULT_LABELS, False)
    assert p.stimuli[0].path == (tmp_path / "a.wav").resolve()


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[protocol]\nmusic_s = 30\nsilence_s = = 10\n')
    with pytest.raises(ProtocolError, match=r"bad\.toml line 3: malformed TOML"):
        load_protocol(path)


def test_missing_fields_are_named_with_the_stimulus_line(tmp_path: Path) -> None:
    path = _protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "happy"},
                                {"id": "b", "genre": "g"}])
    with pytest.raises(ProtocolError, match=r"line 9 stimulus 2 \('b'\): missing field\(s\) path, emotion"):
        load_protocol(path)


def test_unknown_emotion_and_custom_labels(tmp_path: Path) -> None:
    path = _protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "angry"}])
    with pytest.raises(ProtocolError, match=r"unknown emotion 'angry'; labels are happy, sad, relaxing, tense"):
        load_protocol(path)
    path = _protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "angry"}],
                     head='labels = ["calm", "angry"]')
    assert load_protocol(path).labels == ("calm", "angry")


@pytest.mark.parametrize(("head", "message"), [
    ("silence_s = -1", r"silence_s must be >= 0 s, got -1"),
    ('order = "shuffled"', r"order must be 'fixed' or 'random', got 'shuffled'"),
    ("sielnce_s = 3", r"unknown key 'sielnce_s'"),
    ('music_s = "long"', r"music_s must be a number, got 'long'"),
    ('labels = ["happy", "happy"]', r"label 'happy' is listed twice"),
    ('labels = ["Happy Face", "sad"]', r"label 'Happy Face' must be a lower-case word"),
])
def test_bad_values_are_refused(tmp_path: Path, head: str, message: str) -> None:
    path = _protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "sad"}], head=head)
    with pytest.raises(ProtocolError, match=message):
        load_protocol(path)


def test_duplicate_ids_and_empty_protocols_are_refused(tmp_path: Path) -> None:
    s = {"id": "a", "path": "a.wav", "genre": "g", "emotion": "sad"}
    with pytest.raises(ProtocolError, match=r"id 'a' is already used by stimulus 1"):
        load_protocol(_protocol(tmp_path, [s, s]))
    with pytest.raises(ProtocolError, match=r"no stimuli"):
        load_protocol(_protocol(tmp_path, []))
    with pytest.raises(ProtocolError, match=r"does not exist"):
        load_protocol(tmp_path / "nope.toml")


def test_random_order_is_balanced_seeded_per_participant() -> None:
    p = load_protocol(DEMO)
    a1, a2, b = p.ordered("P01"), p.ordered("P01"), p.ordered("P02")
    assert [s.id for s in a1] == [s.id for s in a2]  # same participant, same order
    assert [s.id for s in a1] != [s.id for s in b]  # another participant, another order
    assert sorted(s.id for s in a1) == sorted(s.id for s in p.stimuli)
    for seed in range(50):
        order = balanced_order(p.stimuli, seed)
        genres = [s.genre for s in order]
        assert all(x != y for x, y in itertools.pairwise(genres)), genres
        for k in range(0, 16, 4):  # every round holds each genre once
            assert len(set(genres[k:k + 4])) == 4
    assert [s.id for s in p.ordered("P01", seed=7)] == [s.id for s in balanced_order(p.stimuli, 7)]


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_audio_formats_decode(tmp_path: Path, fmt: str) -> None:
    path = _tone(tmp_path / f"t.{fmt.lower()}", 3.0, fmt=fmt)
    data, sfreq = read_segment(path, 0.5, 2.0)
    assert sfreq == 22050 and abs(len(data) - 2 * 22050) <= 1 and np.abs(data).max() > 0.2


def test_preflight_passes_for_the_demo(tmp_path: Path) -> None:
    report = preflight(load_protocol(DEMO), audio_check=lambda: "test output", store_dir=tmp_path)
    assert report.ok and report.stimuli_ok == 16 and report.audio_output == "test output"
    assert report.free_bytes > report.required_bytes > 0


def test_preflight_names_missing_corrupt_and_short_files(tmp_path: Path) -> None:
    _tone(tmp_path / "ok.wav", 3.0)
    _tone(tmp_path / "short.flac", 1.5)
    (tmp_path / "corrupt.ogg").write_bytes(b"OggS" + bytes(range(256)) * 20)
    stimuli = [{"id": n, "path": f, "genre": "g", "emotion": "sad"} for n, f in
               (("ok", "ok.wav"), ("gone", "gone.wav"), ("short", "short.flac"), ("bad", "corrupt.ogg"))]
    protocol = load_protocol(_protocol(tmp_path, stimuli))
    with pytest.raises(ProtocolError) as info:
        preflight(protocol)
    message = str(info.value)
    assert "\n" not in message
    assert "stimulus 'gone'" in message and "does not exist" in message
    assert "stimulus 'short'" in message and "too short: 1.5 s after start_s 0 s, needs 2 s" in message
    assert "stimulus 'bad'" in message and "does not decode" in message
    assert "stimulus 'ok'" not in message
    report = preflight(protocol, raise_on_error=False)
    assert report.stimuli_ok == 1 and len(report.problems) == 3


def test_preflight_offset_makes_a_file_too_short(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", 3.0)
    protocol = load_protocol(_protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "sad",
                                                   "start_s": 1.5}]))
    with pytest.raises(ProtocolError, match=r"too short: 1\.5 s after start_s 1\.5 s, needs 2 s"):
        preflight(protocol)


def test_preflight_no_audio_device(tmp_path: Path) -> None:
    from app.player import check_output

    _tone(tmp_path / "a.wav", 3.0)
    protocol = load_protocol(_protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "sad"}]))
    with pytest.raises(ProtocolError, match=r"no audio output device \('no-such-device-xyz'\)"):
        preflight(protocol, audio_check=lambda: check_output("no-such-device-xyz"))


def test_preflight_refuses_when_the_disk_is_too_small(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", 3.0)
    protocol = load_protocol(_protocol(tmp_path, [{"id": "a", "path": "a.wav", "genre": "g", "emotion": "sad"}],
                                       head="music_s = 2\nsilence_s = 1e9"))
    with pytest.raises(ProtocolError, match=r"MB free, the session needs about"):
        preflight(protocol, store_dir=tmp_path / "not-yet" / "store.sqlite")
