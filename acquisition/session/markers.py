"""Session markers on an LSL outlet (type ``Markers``), for LabRecorder or EmotivPRO.

Markers are strings: ``session_start``, ``baseline_start``, ``baseline_end``,
``stim_on:<id>``, ``stim_off:<id>``, ``label:<class>``, ``pause:<reason>``, ``resume``,
``session_end``. Each is pushed with its own timestamp on the EEG clock (LSL
``local_clock``): a stimulus onset carries the DAC time of its first audio frame, not the
time of the push.
"""

from __future__ import annotations

import logging
import uuid

log = logging.getLogger(__name__)

MARKER_STREAM_TYPE = "Markers"
DEFAULT_MARKER_STREAM = "duygu-markers"


class MarkerOutlet:
    """An LSL outlet of string markers (one channel, irregular rate).

    Parameters
    ----------
    name : str
        Stream name (LabRecorder shows it).
    source_id : str, optional
        Unique id of the stream (lets recorders reconnect to the same stream); a random
        one if omitted.
    """

    def __init__(self, name: str = DEFAULT_MARKER_STREAM, source_id: str | None = None) -> None:
        import pylsl

        self.name = name
        self.source_id = source_id or f"duygu-markers-{uuid.uuid4().hex[:12]}"
        info = pylsl.StreamInfo(name, MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "Duygu")
        channels = desc.append_child("channels")
        channels.append_child("channel").append_child_value("label", "Marker")
        self._outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(info)
        self.n_pushed = 0

    def push(self, text: str, t: float | None = None) -> None:
        """Publish one marker, stamped ``t`` (EEG clock; now if ``None``)."""
        if self._outlet is None:
            raise RuntimeError(f"marker outlet {self.name!r} is closed")
        if t is None:
            self._outlet.push_sample([str(text)])
        else:
            self._outlet.push_sample([str(text)], float(t))
        self.n_pushed += 1

    def has_consumers(self) -> bool:
        """Whether an inlet (e.g. LabRecorder) is connected."""
        return self._outlet is not None and bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Block until an inlet is connected or the timeout ends."""
        return self._outlet is not None and bool(self._outlet.wait_for_consumers(timeout_s))

    def close(self) -> None:
        """Withdraw the stream (safe to call twice)."""
        outlet, self._outlet = self._outlet, None
        del outlet

    def __enter__(self) -> MarkerOutlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
