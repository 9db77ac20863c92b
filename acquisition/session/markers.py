"""Session markers on LSL, for LabRecorder, EmotivPRO or any recorder.

Markers are strings: ``session_start``, ``baseline_start``, ``baseline_end``,
``stim_on:<id>``, ``stim_off:<id>``, ``label:<class>``, ``pause:<reason>``, ``resume``,
``session_end`` and more (docs/PROTOCOL.md). Each is pushed with its own timestamp on the
EEG clock (LSL ``local_clock``): a stimulus onset carries the DAC time of its first
audio frame, not the time of the push.

The outlet is created when the source is connected -- before any session -- with a
stable ``source_id`` made of the host and the stream name, so a LabRecorder started
beforehand can select it, and re-attaches to it after Duygu restarts. A session's first
marker waits (a few seconds at most) until a recorder is connected.

EmotivPRO records only numeric markers (its LSL inlet takes a ``Markers`` stream of one
channel, ``MarkerValue``, and keeps the integer part). With ``emotivpro=True`` a second
outlet sends each marker as its integer code (the table of :mod:`acquisition.store.marker_codes`),
stored with every session and written into its exports.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from acquisition.store.marker_codes import code_of

log = logging.getLogger(__name__)

MARKER_STREAM_TYPE = "Markers"
DEFAULT_MARKER_STREAM = "duygu-markers"


def stable_source_id(name: str, host: str | None = None) -> str:
    """The outlet's ``source_id``: the same for the same stream name on the same host."""
    return f"duygu-markers@{host or socket.gethostname()}:{name}"


class MarkerOutlet:
    """An LSL outlet of string markers (one channel, irregular rate), and optionally an
    EmotivPRO-format outlet of integer codes beside it.

    Parameters
    ----------
    name : str
        Stream name (LabRecorder shows it).
    source_id : str, optional
        Unique id of the stream; default :func:`stable_source_id` of the name.
    emotivpro : bool
        Also publish ``<name>-emotivpro`` (1 channel ``MarkerValue``, double64) with the
        codes of :meth:`set_codes`.
    """

    def __init__(self, name: str = DEFAULT_MARKER_STREAM, source_id: str | None = None,
                 emotivpro: bool = False) -> None:
        import pylsl

        self.name = name
        self.source_id = source_id or stable_source_id(name)
        info = pylsl.StreamInfo(name, MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "Duygu")
        desc.append_child("channels").append_child("channel").append_child_value("label", "Marker")
        self._outlet: Any = pylsl.StreamOutlet(info)
        self._codes_outlet: Any = None
        self.codes: dict[str, int] = {}
        if emotivpro:
            cinfo = pylsl.StreamInfo(f"{name}-emotivpro", MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE,
                                     pylsl.cf_double64, f"{self.source_id}:emotivpro")
            chans = cinfo.desc().append_child("channels")
            chans.append_child("channel").append_child_value("label", "MarkerValue").append_child_value(
                "type", "Marker")
            self._codes_outlet = pylsl.StreamOutlet(cinfo)
        self.n_pushed = 0

    @property
    def emotivpro(self) -> bool:
        return self._codes_outlet is not None

    def set_codes(self, codes: dict[str, int]) -> None:
        """The code table of the EmotivPRO outlet (from :func:`acquisition.store.marker_codes.marker_codes`)."""
        self.codes = dict(codes)

    def push(self, text: str, t: float | None = None) -> None:
        """Publish one marker, stamped ``t`` (EEG clock; now if ``None``)."""
        if self._outlet is None:
            raise RuntimeError(f"marker outlet {self.name!r} is closed")
        if t is None:
            self._outlet.push_sample([str(text)])
        else:
            self._outlet.push_sample([str(text)], float(t))
        if self._codes_outlet is not None:
            code = code_of(str(text), self.codes)
            if code is not None:
                if t is None:
                    self._codes_outlet.push_sample([float(code)])
                else:
                    self._codes_outlet.push_sample([float(code)], float(t))
        self.n_pushed += 1

    def _outlets(self) -> list[Any]:
        return [o for o in (self._outlet, self._codes_outlet) if o is not None]

    def has_consumers(self) -> bool:
        """Whether every outlet has an inlet connected (LabRecorder, EmotivPRO)."""
        outlets = self._outlets()
        return bool(outlets) and all(o.have_consumers() for o in outlets)

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Block until every outlet has an inlet, or the timeout ends."""
        import time

        deadline = time.monotonic() + max(0.0, timeout_s)
        for outlet in self._outlets():
            left = deadline - time.monotonic()
            if left <= 0 or not outlet.wait_for_consumers(left):
                return self.has_consumers()
        return self.has_consumers()

    def close(self) -> None:
        """Withdraw the streams (safe to call twice)."""
        self._outlet = None
        self._codes_outlet = None

    def __enter__(self) -> MarkerOutlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
