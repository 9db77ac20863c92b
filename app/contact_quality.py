"""EmotivPRO's contact-quality LSL stream, when one is on the network (optional).

EmotivPRO can publish contact quality next to the EEG; the stream is found by its type
(any type containing ``quality``, or ``CQ``), its channels are matched to the EPOC
labels by name, and values 0..4 (EmotivPRO's scale: 0 none, 1 bad, 2 poor, 3 fair,
4 good; a 0..1024 scale is rescaled) become quality levels. A background thread looks
for the stream every few seconds and reads it; :meth:`ContactQualityReader.snapshot`
returns nothing when no stream is present or its last sample is older than 3 s, so a
stream that vanishes simply stops being shown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from acquisition.channels import EPOC_CHANNELS, canonical_label
from processing.quality import ChannelQuality, QualityReport

log = logging.getLogger(__name__)

QUALITY_TYPES = ("cq", "contactquality", "contact-quality", "contact quality", "quality", "eq")
_LEVEL_BY_VALUE = {4: "good", 3: "fair", 2: "poor", 1: "bad", 0: "no data"}


def is_quality_type(stream_type: str) -> bool:
    t = stream_type.strip().lower()
    return t in QUALITY_TYPES or "quality" in t


def levels_from_values(labels: list[str], values: np.ndarray) -> QualityReport:
    """Turn one contact-quality sample into a report in EPOC order."""
    vals = np.asarray(values, dtype=float)
    if vals.size and np.nanmax(vals) > 4.5:
        vals = vals / 1024.0 * 4.0
    by_name: dict[str, float] = {}
    for label, v in zip(labels, vals, strict=False):
        name = canonical_label(label)
        if name is not None:
            by_name[name] = float(v)
    out = []
    for ch in EPOC_CHANNELS:
        v = by_name.get(ch)
        level = "no data" if v is None or not np.isfinite(v) else _LEVEL_BY_VALUE[int(np.clip(round(v), 0, 4))]
        out.append(ChannelQuality(ch, level, ("contact",) if level in ("poor", "bad") else ()))
    return QualityReport(tuple(out), 0.0)


class ContactQualityReader:
    """Background discovery and reading of a contact-quality stream."""

    def __init__(self, search_every_s: float = 5.0, stale_after_s: float = 3.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.search_every_s = search_every_s
        self.stale_after_s = stale_after_s
        self.on_error = on_error
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: tuple[str, QualityReport, float] | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="duygu-contact-quality", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def snapshot(self) -> tuple[str, QualityReport] | None:
        with self._lock:
            latest = self._latest
        if latest is None or time.monotonic() - latest[2] > self.stale_after_s:
            return None
        return latest[0], latest[1]

    def _run(self) -> None:
        try:
            self._search_and_read()
        except Exception as exc:  # never vanish: the reason is kept and told to the GUI
            self._report(f"contact-quality reader stopped: {type(exc).__name__}: {exc}")
            log.exception("contact-quality reader stopped")

    def _report(self, message: str) -> None:
        self.last_error = message
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("contact-quality error listener failed")

    def _search_and_read(self) -> None:
        import pylsl
        import pylsl.util

        while not self._stop.is_set():
            infos = [i for i in pylsl.resolve_streams(wait_time=1.0) if is_quality_type(i.type())]
            if not infos:
                self._stop.wait(self.search_every_s)
                continue
            info = infos[0]
            try:
                inlet = pylsl.StreamInlet(info, max_buflen=5, recover=False)
                full = inlet.info(timeout=2.0)
                labels = _channel_labels(full)
                name = info.name()
                while not self._stop.is_set():
                    samples, _ts = inlet.pull_chunk(timeout=0.5)
                    if samples:
                        report = levels_from_values(labels, np.asarray(samples[-1]))
                        with self._lock:
                            self._latest = (name, report, time.monotonic())
            except pylsl.util.LostError:
                log.info("contact-quality stream %s vanished", info.name())
            except Exception as exc:  # a broken outlet must not end the search; say why
                self._report(f"contact-quality stream {info.name()!r}: {type(exc).__name__}: {exc}")
            self._stop.wait(1.0)


def _channel_labels(info: object) -> list[str]:
    labels: list[str] = []
    ch = info.desc().child("channels").child("channel")  # type: ignore[attr-defined]
    while not ch.empty():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling()
    return labels
