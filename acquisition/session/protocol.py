"""Listening-session protocols: the TOML file, its validation, stimulus order, preflight.

A protocol names the stimuli (audio file, genre, intended emotion, start offset), the
durations (music, silence, optional rest baseline), the order (fixed, or randomised per
participant and balanced across genres), the label set and whether SAM ratings
(valence and arousal, 1-9) are asked. The schema is documented in ``docs/PROTOCOL.md``.

Everything here is engine code: no Qt, no sounddevice. Audio is decoded with soundfile
(WAV, FLAC, OGG, MP3). :func:`preflight` is run before a session starts and refuses it
with one :class:`~acquisition.errors.ProtocolError` naming every problem found.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import DuyguError, ProtocolError

DEFAULT_LABELS: tuple[str, ...] = ("happy", "sad", "relaxing", "tense")
ORDERS = ("fixed", "random")

_PROTOCOL_KEYS = {
    "name": str,
    "description": str,
    "music_s": (int, float),
    "silence_s": (int, float),
    "baseline_s": (int, float),
    "order": str,
    "seed": int,
    "labels": list,
    "sam": bool,
    "synthetic": bool,
}
_STIMULUS_KEYS = {
    "id": str,
    "path": str,
    "genre": str,
    "emotion": str,
    "start_s": (int, float),
    "title": str,
    "credit": str,
}
_REQUIRED_STIMULUS_KEYS = ("id", "path", "genre", "emotion")
_LABEL_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_STIMULI_HEADER_RE = re.compile(r"^\s*\[\[\s*stimuli\s*\]\]", re.MULTILINE)
#: bytes per stored EEG sample: 14 float32 values and a float64 timestamp, plus SQLite
#: and index overhead (a generous factor so the check errs on the safe side)
_BYTES_PER_SAMPLE = (len(EPOC_CHANNELS) * 4 + 8) * 2


@dataclass(frozen=True)
class Stimulus:
    """One piece of music in a protocol.

    Attributes
    ----------
    id : str
        Unique id, used in markers (``stim_on:<id>``) and in the store.
    path : Path
        Absolute path of the audio file (relative paths in the TOML are resolved
        against the protocol file's folder).
    genre : str
        Genre (or, for the demo stimuli, synthetic style).
    emotion : str
        Intended emotion; one of the protocol's labels.
    start_s : float
        Where in the file the excerpt starts.
    """

    id: str
    path: Path
    genre: str
    emotion: str
    start_s: float = 0.0
    title: str = ""
    credit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "genre": self.genre,
            "emotion": self.emotion,
            "start_s": self.start_s,
            "title": self.title,
            "credit": self.credit,
        }


@dataclass(frozen=True)
class Protocol:
    """A validated listening-session protocol (build it with :func:`load_protocol`)."""

    stimuli: tuple[Stimulus, ...]
    name: str = "protocol"
    description: str = ""
    music_s: float = 30.0
    silence_s: float = 10.0
    baseline_s: float = 0.0
    order: str = "fixed"
    seed: int = 0
    labels: tuple[str, ...] = DEFAULT_LABELS
    sam: bool = False
    synthetic: bool = False
    source_path: Path | None = None

    @property
    def genres(self) -> list[str]:
        """Genres in order of first appearance."""
        return list(dict.fromkeys(s.genre for s in self.stimuli))

    def stimulus(self, stimulus_id: str) -> Stimulus:
        for s in self.stimuli:
            if s.id == stimulus_id:
                return s
        raise ProtocolError(f"stimulus id {stimulus_id!r} is not in protocol {self.name!r}")

    def participant_seed(self, participant: str, seed: int | None = None) -> int:
        """The seed of a participant's order: ``seed`` if given, else derived from the
        protocol seed and the participant id (stable across runs and machines)."""
        if seed is not None:
            return int(seed)
        digest = hashlib.sha256(f"{self.seed}:{participant}".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    def ordered(self, participant: str = "", seed: int | None = None) -> list[Stimulus]:
        """The stimuli in the order a participant hears them.

        ``order = "fixed"``: file order. ``order = "random"``: see
        :func:`balanced_order`, seeded with :meth:`participant_seed`.
        """
        if self.order == "fixed":
            return list(self.stimuli)
        return balanced_order(self.stimuli, self.participant_seed(participant, seed))

    def expected_duration_s(self) -> float:
        """Length of a full session (baseline + music + silences), without label time."""
        return self.baseline_s + len(self.stimuli) * (self.music_s + self.silence_s)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the store and JSON."""
        return {
            "name": self.name,
            "description": self.description,
            "music_s": self.music_s,
            "silence_s": self.silence_s,
            "baseline_s": self.baseline_s,
            "order": self.order,
            "seed": self.seed,
            "labels": list(self.labels),
            "sam": self.sam,
            "synthetic": self.synthetic,
            "source_path": str(self.source_path) if self.source_path else None,
            "stimuli": [s.as_dict() for s in self.stimuli],
        }


def balanced_order(stimuli: tuple[Stimulus, ...] | list[Stimulus], seed: int) -> list[Stimulus]:
    """Randomise stimuli so that genres are spread evenly.

    The stimuli of each genre are shuffled; the session is then built in rounds, each
    round taking one stimulus of every genre that still has one, in a shuffled genre
    order that never starts with the genre that ended the previous round. With 4 genres
    x 4 stimuli every block of 4 consecutive rounds' positions holds each genre once and
    no genre is heard twice in a row.
    """
    rng = np.random.default_rng(seed)
    by_genre: dict[str, list[Stimulus]] = {}
    for s in stimuli:
        by_genre.setdefault(s.genre, []).append(s)
    pools = {g: [items[i] for i in rng.permutation(len(items))] for g, items in by_genre.items()}
    order: list[Stimulus] = []
    last_genre: str | None = None
    while any(pools.values()):
        genres = [g for g, items in pools.items() if items]
        genres = [genres[i] for i in rng.permutation(len(genres))]
        if len(genres) > 1 and genres[0] == last_genre:
            swap = int(rng.integers(1, len(genres)))
            genres[0], genres[swap] = genres[swap], genres[0]
        for g in genres:
            order.append(pools[g].pop())
        last_genre = genres[-1]
    return order


def _where(path: Path | None) -> str:
    return path.name if path is not None else "protocol"


def _check_keys(table: dict[str, Any], allowed: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ProtocolError(f"{where}: unknown key {key!r}; expected one of {', '.join(allowed)}")
        kinds = allowed[key]
        if isinstance(value, bool) and kinds is not bool:
            raise ProtocolError(f"{where}: {key} must be {_kind_name(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise ProtocolError(f"{where}: {key} must be {_kind_name(kinds)}, got {value!r}")


def _kind_name(kinds: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    if isinstance(kinds, tuple):
        return "a number"
    return names.get(kinds, str(kinds))


def _duration(table: dict[str, Any], key: str, default: float, where: str, minimum: float) -> float:
    value = float(table.get(key, default))
    if not math.isfinite(value) or value < minimum:
        raise ProtocolError(f"{where}: {key} must be >= {minimum:g} s, got {table.get(key)!r}")
    return value


def parse_protocol(text: str, path: Path | None = None, base_dir: Path | None = None) -> Protocol:
    """Validate protocol TOML text.

    Parameters
    ----------
    text : str
        The TOML document.
    path : Path, optional
        The file it came from (named in error messages).
    base_dir : Path, optional
        Folder that relative stimulus paths are resolved against (default: the
        folder of ``path``, else the current folder).

    Raises
    ------
    ProtocolError
        Malformed TOML (the message gives the line), missing or unknown fields, bad
        values, an unknown intended emotion, duplicate ids.
    """
    where = _where(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        reason = message[: match.start()].strip() if match else message
        if match:
            raise ProtocolError(f"{where} line {match.group(1)}: malformed TOML: {reason}") from None
        raise ProtocolError(f"{where}: malformed TOML: {reason}") from None
    base = base_dir if base_dir is not None else (path.parent if path is not None else Path.cwd())
    stimulus_lines = [text.count("\n", 0, m.start()) + 1 for m in _STIMULI_HEADER_RE.finditer(text)]

    unknown_top = set(doc) - {"protocol", "stimuli"}
    if unknown_top:
        raise ProtocolError(f"{where}: unknown table(s) {sorted(unknown_top)}; expected [protocol] and [[stimuli]]")
    head = doc.get("protocol", {})
    if not isinstance(head, dict):
        raise ProtocolError(f"{where}: 'protocol' must be a table ([protocol])")
    _check_keys(head, _PROTOCOL_KEYS, f"{where} [protocol]")

    labels_raw = head.get("labels", list(DEFAULT_LABELS))
    labels: list[str] = []
    for label in labels_raw:
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ProtocolError(
                f"{where} [protocol]: label {label!r} must be a lower-case word (letters, digits, '-', '_')"
            )
        if label in labels:
            raise ProtocolError(f"{where} [protocol]: label {label!r} is listed twice")
        labels.append(label)
    if len(labels) < 2:
        raise ProtocolError(f"{where} [protocol]: labels must name at least 2 classes, got {labels_raw!r}")

    order = head.get("order", "fixed")
    if order not in ORDERS:
        raise ProtocolError(f"{where} [protocol]: order must be 'fixed' or 'random', got {order!r}")

    music_s = _duration(head, "music_s", 30.0, f"{where} [protocol]", 0.5)
    silence_s = _duration(head, "silence_s", 10.0, f"{where} [protocol]", 0.0)
    baseline_s = _duration(head, "baseline_s", 0.0, f"{where} [protocol]", 0.0)

    raw_stimuli = doc.get("stimuli")
    if not isinstance(raw_stimuli, list) or not raw_stimuli:
        raise ProtocolError(f"{where}: no stimuli; add at least one [[stimuli]] table with id, path, genre, emotion")
    stimuli: list[Stimulus] = []
    seen: dict[str, int] = {}
    for k, table in enumerate(raw_stimuli):
        line = f" line {stimulus_lines[k]}" if k < len(stimulus_lines) else ""
        label = f"{where}{line} stimulus {k + 1}"
        if not isinstance(table, dict):
            raise ProtocolError(f"{label}: must be a table ([[stimuli]])")
        if "id" in table and isinstance(table["id"], str):
            label += f" ({table['id']!r})"
        missing = [key for key in _REQUIRED_STIMULUS_KEYS if key not in table]
        if missing:
            raise ProtocolError(f"{label}: missing field(s) {', '.join(missing)}")
        _check_keys(table, _STIMULUS_KEYS, label)
        sid = table["id"].strip()
        if not sid or any(c.isspace() for c in sid) or ":" in sid:
            raise ProtocolError(f"{label}: id must be non-empty with no spaces or ':', got {table['id']!r}")
        if sid in seen:
            raise ProtocolError(f"{label}: id {sid!r} is already used by stimulus {seen[sid] + 1}")
        seen[sid] = k
        emotion = table["emotion"]
        if emotion not in labels:
            raise ProtocolError(f"{label}: unknown emotion {emotion!r}; labels are {', '.join(labels)}")
        start_s = float(table.get("start_s", 0.0))
        if not math.isfinite(start_s) or start_s < 0:
            raise ProtocolError(f"{label}: start_s must be >= 0 s, got {table.get('start_s')!r}")
        file_path = Path(table["path"]).expanduser()
        if not file_path.is_absolute():
            file_path = base / file_path
        stimuli.append(Stimulus(
            id=sid, path=file_path.resolve(), genre=table["genre"], emotion=emotion, start_s=start_s,
            title=table.get("title", ""), credit=table.get("credit", ""),
        ))

    return Protocol(
        stimuli=tuple(stimuli),
        name=head.get("name", path.stem if path is not None else "protocol"),
        description=head.get("description", ""),
        music_s=music_s,
        silence_s=silence_s,
        baseline_s=baseline_s,
        order=order,
        seed=int(head.get("seed", 0)),
        labels=tuple(labels),
        sam=bool(head.get("sam", False)),
        synthetic=bool(head.get("synthetic", False)),
        source_path=path.resolve() if path is not None else None,
    )


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol TOML file (see :func:`parse_protocol`).

    Raises
    ------
    ProtocolError
        The file is missing or unreadable, or its content is invalid.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProtocolError(f"protocol file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"protocol file {str(p)!r} cannot be read: {exc}") from None
    return parse_protocol(text, p)


# -- audio --------------------------------------------------------------------------------
def read_segment(path: str | Path, start_s: float, duration_s: float) -> tuple[NDArray[np.float32], float]:
    """Decode ``duration_s`` seconds of audio from ``start_s`` (WAV, FLAC, OGG, MP3).

    Returns
    -------
    data : ndarray, shape (n_frames, n_channels), float32 in [-1, 1]
    sfreq_hz : float

    Raises
    ------
    ProtocolError
        The file is missing, does not decode, or is shorter than ``start_s + duration_s``.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise ProtocolError(f"audio file {str(p)!r} does not exist")
    try:
        with sf.SoundFile(str(p)) as f:
            sfreq_hz = float(f.samplerate)
            start = round(start_s * sfreq_hz)
            n = round(duration_s * sfreq_hz)
            if f.seekable() and start:
                f.seek(start)
            elif start:
                f.read(start, dtype="float32", always_2d=True)
            data = f.read(n, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise ProtocolError(f"audio file {p.name!r} does not decode: {exc}") from None
    if len(data) < n - 1:
        have_s = len(data) / sfreq_hz
        raise ProtocolError(
            f"audio file {p.name!r} is too short: {have_s:.1f} s after start_s {start_s:g} s, needs {duration_s:g} s"
        )
    if not np.all(np.isfinite(data)):
        raise ProtocolError(f"audio file {p.name!r} does not decode: non-finite samples")
    return data, sfreq_hz


# -- preflight ----------------------------------------------------------------------------
@dataclass
class PreflightReport:
    """What :func:`preflight` checked."""

    stimuli_ok: int = 0
    audio_output: str | None = None
    free_bytes: int = 0
    required_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_eeg_bytes(protocol: Protocol, sfreq_hz: float = SFREQ_HZ, margin_s: float = 120.0) -> int:
    """Disk space the session's EEG needs in the store (generous estimate)."""
    seconds = protocol.expected_duration_s() + margin_s + 15.0 * len(protocol.stimuli)
    return int(seconds * sfreq_hz * _BYTES_PER_SAMPLE) + 16 * 1024 * 1024


def preflight(
    protocol: Protocol,
    *,
    audio_check: Callable[[], str] | None = None,
    store_dir: str | Path | None = None,
    sfreq_hz: float = SFREQ_HZ,
    check_audio_files: bool = True,
    raise_on_error: bool = True,
) -> PreflightReport:
    """Check that a session can run before it starts.

    Parameters
    ----------
    protocol : Protocol
    audio_check : callable, optional
        Returns a description of the audio output, or raises :class:`DuyguError` if
        there is none (the app passes ``StimulusPlayer.check_output``; the engine has
        no audio library of its own). ``None`` skips the check (silent sessions).
    store_dir : path, optional
        Folder of the store file; its disk must hold the expected EEG.
    check_audio_files : bool
        Decode every stimulus excerpt (exists, decodes, long enough from its offset).
    raise_on_error : bool
        Raise one :class:`ProtocolError` listing every problem (default), or return the
        report with ``problems`` filled in.
    """
    report = PreflightReport()
    if check_audio_files:
        for s in protocol.stimuli:
            try:
                read_segment(s.path, s.start_s, protocol.music_s)
            except ProtocolError as exc:
                report.problems.append(f"stimulus {s.id!r}: {exc}")
            else:
                report.stimuli_ok += 1
    if audio_check is not None:
        try:
            report.audio_output = audio_check()
        except DuyguError as exc:
            report.problems.append(str(exc))
    if store_dir is not None:
        folder = Path(store_dir)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        report.required_bytes = expected_eeg_bytes(protocol, sfreq_hz)
        report.free_bytes = int(shutil.disk_usage(folder).free)
        if report.free_bytes < report.required_bytes:
            report.problems.append(
                f"disk of {str(folder)!r} has {report.free_bytes / 1e6:.0f} MB free, "
                f"the session needs about {report.required_bytes / 1e6:.0f} MB"
            )
    if report.problems and raise_on_error:
        raise ProtocolError("preflight failed: " + "; ".join(report.problems))
    return report
