"""Integer codes for Duygu's marker words: the table EmotivPRO records and exports carry.

EmotivPRO's marker inlet keeps only numbers, and a BIDS ``events.tsv`` ``value`` column
is an integer per event type. One table serves both, written into each session's
protocol JSON (``emotivpro_marker_codes``) and into its exports:

============================  =======================================
word                          code
============================  =======================================
``session_start``             1
``session_end``               2
``baseline_start``            3
``baseline_end``              4
``baseline_interrupted``      5
``pause:<why>``               6
``resume``                    7
``fault:<what>``              8
``session_failed:<why>``      9
``fault_cleared:<what>``       10
``stim_on:<id>``              1000 + k (k-th stimulus of the protocol, from 1)
``stim_off:<id>``             2000 + k
``trial_interrupted:<id>``    3000 + k
``label:<class>``             4000 + j (j-th label of the protocol, from 1)
``stimulus:<id>`` (exports)   5000 + k: the trial row, onset to offset
============================  =======================================

Markers from the device (``hardware:<v>``, ``emotivpro:<v>``) have no code: their value
is the device's own.
"""

from __future__ import annotations

from collections.abc import Iterable

FIXED_CODES: dict[str, int] = {
    "session_start": 1, "session_end": 2, "baseline_start": 3, "baseline_end": 4, "baseline_interrupted": 5,
    "pause": 6, "resume": 7, "fault": 8, "session_failed": 9, "fault_cleared": 10,
}
STIM_ON_BASE, STIM_OFF_BASE, INTERRUPTED_BASE, LABEL_BASE, TRIAL_BASE = 1000, 2000, 3000, 4000, 5000


def marker_codes(stimulus_ids: Iterable[str], labels: Iterable[str]) -> dict[str, int]:
    """The integer code of every marker word a session can send (see the module table)."""
    codes = dict(FIXED_CODES)
    for k, sid in enumerate(stimulus_ids, start=1):
        codes[f"stim_on:{sid}"] = STIM_ON_BASE + k
        codes[f"stim_off:{sid}"] = STIM_OFF_BASE + k
        codes[f"trial_interrupted:{sid}"] = INTERRUPTED_BASE + k
    for j, label in enumerate(labels, start=1):
        codes[f"label:{label}"] = LABEL_BASE + j
    return codes


def code_of(text: str, codes: dict[str, int]) -> int | None:
    """The code of a marker word (``pause:operator`` -> the code of ``pause``), or None."""
    if text in codes:
        return codes[text]
    word = text.split(":", 1)[0]
    return codes.get(word) if word in FIXED_CODES else None
