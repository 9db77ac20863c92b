"""Import a LabRecorder XDF recording as a stored session: EEG, markers, trials, labels.

The EEG stream becomes the session's EEG stored as a live recording of the same file
would store it: the samples numbered as they come, and every hole in the stream's
timestamps a gap row (``gap in the recording``, with its ``gap:`` marker) after the
last sample before it. Every marker of the chosen marker stream is stored at its sample
(the first at or after its time). Trials come from the marker words: a ``stim_on:<id>``
followed by ``stim_off:<id>`` is a trial, and the first ``label:<class>`` after it
(before the next stimulus) is its label -- Duygu's own vocabulary, so a session recorded
by LabRecorder beside Duygu imports as it was. As in a live session, a trial holding a
gap of a second or more, or whose EEG is not all there, is kept as ``interrupted`` and
never labelled (its label stays a marker); a shorter gap leaves the trial complete, and
training cuts its windows between the gaps. Other vocabularies are mapped by a small
TOML file::

    [markers]                      # regular expressions; the group is the id / the class
    stim_on = '^Stimulus (\\w+) start$'
    stim_off = '^Stimulus (\\w+) end$'
    label = '^Rating (\\w+)$'

    [labels]                       # optional: the classes the label values stand for
    1 = "happy"
    2 = "sad"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import DataError
from acquisition.session.runner import trial_loss
from acquisition.sources.replay import read_xdf
from acquisition.store.sqlite import SessionStore, check_label

#: why the samples of a hole in the EEG stream's timestamps are missing (the reason a live
#: replay of the same file records)
GAP_REASON = "gap in the recording"

#: Duygu's own marker words.
DEFAULT_PATTERNS: dict[str, str] = {"stim_on": r"^stim_on:(.+)$", "stim_off": r"^stim_off:(.+)$",
                                    "label": r"^label:(.+)$"}


@dataclass(frozen=True)
class MarkerVocabulary:
    """How marker texts name stimulus onsets, offsets and labels."""

    stim_on: re.Pattern[str]
    stim_off: re.Pattern[str]
    label: re.Pattern[str]
    labels: dict[str, str]

    @classmethod
    def default(cls) -> MarkerVocabulary:
        return cls(re.compile(DEFAULT_PATTERNS["stim_on"]), re.compile(DEFAULT_PATTERNS["stim_off"]),
                   re.compile(DEFAULT_PATTERNS["label"]), {})

    @classmethod
    def load(cls, path: str | Path) -> MarkerVocabulary:
        """Read a mapping TOML (see the module docstring).

        Raises
        ------
        DataError
            Not TOML, an unknown key, or a pattern that is not a regular expression with
            one group.
        """
        p = Path(path)
        try:
            table = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DataError(f"marker mapping {p.name}: cannot read it as TOML: {exc}") from None
        unknown = sorted(set(table) - {"markers", "labels"})
        if unknown:
            raise DataError(f"marker mapping {p.name}: unknown table(s) {', '.join(unknown)}; use [markers], [labels]")
        given = table.get("markers", {})
        bad_keys = sorted(set(given) - set(DEFAULT_PATTERNS))
        if bad_keys:
            raise DataError(f"marker mapping {p.name}: [markers] keys must be stim_on, stim_off, label, "
                            f"got {', '.join(bad_keys)}")
        patterns = []
        for key in ("stim_on", "stim_off", "label"):
            text = str(given.get(key, DEFAULT_PATTERNS[key]))
            try:
                pattern = re.compile(text)
            except re.error as exc:
                raise DataError(f"marker mapping {p.name}: {key} = {text!r} is not a regular expression: {exc}") from None
            if pattern.groups != 1:
                raise DataError(f"marker mapping {p.name}: {key} = {text!r} must have exactly one (group)")
            patterns.append(pattern)
        labels = {str(k): str(v) for k, v in table.get("labels", {}).items()}
        return cls(patterns[0], patterns[1], patterns[2], labels)


@dataclass(frozen=True)
class ImportResult:
    session_id: int
    samples: int
    gaps: int
    markers: int
    trials: int
    labelled: int
    eeg_stream: str
    marker_stream: str | None
    interrupted: int = 0  # of ``trials``: kept, never labelled (a long gap, EEG missing)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_xdf(path: str | Path, store: SessionStore, participant: str, *, stream: str | None = None,
               marker_stream: str | None = None, vocabulary: MarkerVocabulary | None = None) -> ImportResult:
    """Store an XDF recording as a session of ``participant``.

    Raises
    ------
    RecordingError, DataError, StoreError
        An unreadable file, no EEG stream, no such marker stream, a refused id.
    """
    p = Path(path)
    vocab = vocabulary or MarkerVocabulary.default()
    contents = read_xdf(p, stream)
    rec = contents.recording
    assert rec.timestamps is not None
    if marker_stream is not None and marker_stream not in contents.markers:
        raise DataError(f"{p.name}: no marker stream named {marker_stream!r} "
                        f"(marker streams: {', '.join(contents.markers) or 'none'})")
    chosen = marker_stream or next(iter(contents.markers), None)
    events = sorted(contents.markers.get(chosen, [])) if chosen else []

    # the stored indices count the samples as a live recording of this file would (a
    # source's samples are numbered as they arrive): the holes are gap rows, not index
    # jumps -- both at once would count the missing samples twice
    times = rec.timestamps
    n = len(rec.data)
    protocol = {"name": f"import {p.name}", "imported_from": str(p.resolve()), "eeg_stream": contents.stream,
                "marker_stream": chosen}
    device = {"kind": "xdf", "name": contents.stream, "native_sfreq_hz": rec.native_sfreq_hz,
              "native_channels": list(rec.labels), "notes": list(rec.notes)}
    sid = store.start_session(participant, protocol, f"xdf:{p.name}", device)
    try:
        for a in range(0, n, 1280):
            store.append_eeg(sid, rec.data[a:a + 1280], times[a:a + 1280], a)
        gaps = [(after, n_missing) for after, n_missing in rec.gaps if 0 <= after < n - 1]
        for after, n_missing in gaps:
            store.add_gap(sid, after, float(times[after]), float(times[after + 1]), n_missing, GAP_REASON)

        def index_at(t: float) -> int | None:
            k = int(np.searchsorted(times, t, side="left"))
            return k if k < n else None

        for t, text in events:
            store.add_marker(sid, t, text, index_at(t))
        n_trials = n_labelled = n_interrupted = 0
        open_trial: tuple[str, float] | None = None
        last_trial: int | None = None
        for t, text in events:
            if m := vocab.stim_on.match(text):
                open_trial, last_trial = (m.group(1), t), None
            elif (m := vocab.stim_off.match(text)) and open_trial is not None and open_trial[0] == m.group(1):
                stimulus, onset_t = open_trial
                onset_index, offset_index = index_at(onset_t), index_at(t)
                lost = trial_loss(onset_index, offset_index, [(a, k, GAP_REASON) for a, k in gaps], rec.sfreq_hz)
                status = "interrupted" if lost else "complete"  # the live runner's rule
                trial_id = store.add_trial(sid, stimulus, None, onset_t, t, onset_index, offset_index, status)
                n_trials += 1
                open_trial = None
                if status == "interrupted":  # kept for review, never labelled (as live)
                    store.add_marker(sid, t, f"trial_interrupted:{stimulus}", offset_index)
                    n_interrupted += 1
                    last_trial = None
                else:
                    last_trial = trial_id
            elif (m := vocab.label.match(text)) and last_trial is not None:
                label = vocab.labels.get(m.group(1), m.group(1))
                store.set_trial_label(last_trial, check_label(label))
                n_labelled += 1
                last_trial = None  # one label per trial: a second answer is only a marker
    except BaseException:
        store.finish_session(sid, "interrupted")
        raise
    store.finish_session(sid, "completed")
    return ImportResult(sid, n, len(gaps), len(events), n_trials, n_labelled, contents.stream, chosen,
                        n_interrupted)
