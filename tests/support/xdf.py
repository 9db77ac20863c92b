"""A small XDF writer for tests: exact files with the holes and marker times a test needs
(LabRecorder itself records in real time, so it cannot make a gap on demand).

The layout is XDF 1.0 (https://github.com/sccn/xdf/wiki/Specifications): the magic
``XDF:``, a FileHeader chunk, then per stream a StreamHeader, one Samples chunk, two
ClockOffset chunks (at the first timestamp and 5 s after the last; LabRecorder measures
them every few seconds) and a StreamFooter; every sample carries its own timestamp. The
clock offsets are 0, so pyxdf's clock synchronisation leaves the timestamps as written.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray

_FILE_HEADER, _STREAM_HEADER, _SAMPLES, _CLOCK_OFFSET, _STREAM_FOOTER = 1, 2, 3, 4, 6


@dataclass(frozen=True)
class NumericStream:
    name: str
    type: str
    labels: Sequence[str]
    nominal_srate: float
    timestamps: NDArray[np.float64]
    values: NDArray[np.float64]  # (n, len(labels)), written as float32
    unit: str = "microvolts"


@dataclass(frozen=True)
class StringStream:
    name: str
    events: Sequence[tuple[float, str]]  # (timestamp, text)
    type: str = "Markers"


def _varlen(n: int) -> bytes:
    if n < 256:
        return bytes([1, n])
    if n < 2**32:
        return bytes([4]) + struct.pack("<I", n)
    return bytes([8]) + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    body = struct.pack("<H", tag) + (b"" if stream_id is None else struct.pack("<I", stream_id)) + content
    return _varlen(len(body)) + body


def _info(name: str, type_: str, n_channels: int, srate: float, fmt: str, desc: str = "") -> bytes:
    return (f'<?xml version="1.0"?><info><name>{escape(name)}</name><type>{escape(type_)}</type>'
            f"<channel_count>{n_channels}</channel_count><nominal_srate>{srate:g}</nominal_srate>"
            f"<channel_format>{fmt}</channel_format><source_id>{escape(name)}-sid</source_id>"
            f"<created_at>0</created_at><desc>{desc}</desc></info>").encode()


def _footer(timestamps: Sequence[float]) -> bytes:
    first, last = (timestamps[0], timestamps[-1]) if len(timestamps) else (0.0, 0.0)
    return (f'<?xml version="1.0"?><info><first_timestamp>{first!r}</first_timestamp>'
            f"<last_timestamp>{last!r}</last_timestamp><sample_count>{len(timestamps)}</sample_count>"
            "</info>").encode()


def write_xdf(path: Path, streams: Sequence[NumericStream | StringStream]) -> Path:
    """Write ``streams`` (ids 1, 2, ... in order) to ``path``; returns ``path``."""
    out = bytearray(b"XDF:")
    out += _chunk(_FILE_HEADER, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    for sid, st in enumerate(streams, start=1):
        if isinstance(st, NumericStream):
            channels = "".join(f"<channel><label>{escape(lab)}</label><unit>{escape(st.unit)}</unit>"
                               "<type>EEG</type></channel>" for lab in st.labels)
            out += _chunk(_STREAM_HEADER, _info(st.name, st.type, len(st.labels), st.nominal_srate, "float32",
                                                f"<channels>{channels}</channels>"), sid)
            values = np.asarray(st.values, dtype="<f4")
            assert values.shape == (len(st.timestamps), len(st.labels))
            samples = b"".join(b"\x08" + struct.pack("<d", float(t)) + row.tobytes()
                               for t, row in zip(st.timestamps, values, strict=True))
            out += _chunk(_SAMPLES, _varlen(len(st.timestamps)) + samples, sid)
            stamps = [float(t) for t in st.timestamps]
        else:
            out += _chunk(_STREAM_HEADER, _info(st.name, st.type, 1, 0, "string"), sid)
            samples = b"".join(b"\x08" + struct.pack("<d", t) + _varlen(len(text.encode())) + text.encode()
                               for t, text in st.events)
            out += _chunk(_SAMPLES, _varlen(len(st.events)) + samples, sid)
            stamps = [t for t, _ in st.events]
        for t in (stamps[0], stamps[-1] + 5.0) if stamps else ():  # distinct, even for one sample
            out += _chunk(_CLOCK_OFFSET, struct.pack("<dd", t, 0.0), sid)
        out += _chunk(_STREAM_FOOTER, _footer(stamps), sid)
    path.write_bytes(bytes(out))
    return path
