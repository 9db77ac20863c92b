"""EmotivPRO's contact-quality streams, read by label and matched to their EEG stream.

EmotivPRO publishes, beside its EEG outlet, two 2 Hz quality streams (docs/EMOTIVPRO.md):

* ``Contact-Quality``: ``Timestamp, BatteryPercent, Overall, Signal``, then each sensor;
* ``EEG-Quality``: ``Timestamp, BatteryPercent, Overall, SampleRateQuality``, then each
  sensor.

Each sensor is on Emotiv's 0-4 scale (0 no signal, 1 bad, 2 poor, 3 fair, 4 good);
battery and overall are percentages. Columns are found **by label**, never by position,
so the timestamp and the battery can never be mistaken for a sensor. A quality stream is
used only when it belongs to the EEG stream being read: the same host and the same
stream-name prefix (``EmotivDataStream-EEG`` -> ``EmotivDataStream-Contact-Quality``) --
never another headset's. ``EEG-Quality`` is preferred when both are published.

:class:`QualityReader` follows that stream in a background thread; the session runner
asks it for the worst quality seen during each trial, which is stored with the trial.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from acquisition.channels import EPOC_CHANNELS, QUALITY_LEVELS, canonical_label

log = logging.getLogger(__name__)

#: Emotiv's 0-4 contact scale, as words.
LEVELS: dict[int, str] = {4 - k: name for k, name in enumerate(QUALITY_LEVELS)}  # 0 "no data" ... 4 "good"
#: Quality stream types, most preferred first.
QUALITY_TYPES: tuple[str, ...] = ("EEG-Quality", "Contact-Quality")
#: Levels that make a trial "recorded with bad contact".
BAD_LEVELS: frozenset[str] = frozenset({"no data", "bad"})


def level_of(value: float | None) -> str:
    """The word for a 0-4 contact value (``no data`` when missing or not finite)."""
    if value is None or not math.isfinite(value):
        return "no data"
    return LEVELS[int(min(4, max(0, round(value))))]


@dataclass(frozen=True)
class QualityReading:
    """One quality sample, in EPOC order.

    ``channels`` maps each EPOC electrode to ``(level, value)`` (value on the 0-4 scale,
    ``None`` when the stream does not carry the electrode); ``t`` is the sample's time
    on the EEG clock.
    """

    source_of_quality: str  # "emotivpro" or "computed"
    stream: str
    battery_percent: float | None
    overall: float | None
    channels: dict[str, tuple[str, float | None]]
    t: float = 0.0
    signal: float | None = None

    def levels(self) -> list[str]:
        return [self.channels.get(ch, ("no data", None))[0] for ch in EPOC_CHANNELS]

    def bad_channels(self) -> list[str]:
        return [ch for ch in EPOC_CHANNELS if self.channels.get(ch, ("no data", None))[0] in BAD_LEVELS]

    def as_json(self) -> dict[str, Any]:
        """The ``duygu quality --json`` shape."""
        return {
            "source_of_quality": self.source_of_quality,
            "stream": self.stream,
            "battery_percent": self.battery_percent,
            "overall": self.overall,
            "channels": {ch: {"level": lvl, "value": val} for ch, (lvl, val) in
                         ((c, self.channels.get(c, ("no data", None))) for c in EPOC_CHANNELS)},
        }


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def reading_from_sample(labels: Sequence[str], values: Sequence[float], stream: str = "",
                        t: float = 0.0) -> QualityReading:
    """Read one quality sample by its channel labels (EmotivPRO's layouts, or any stream
    whose labels name the EPOC sensors)."""
    by_label: dict[str, float | None] = {}
    sensors: dict[str, float | None] = {}
    for label, value in zip(labels, values, strict=False):
        key = label.strip().lower().replace(" ", "").replace("_", "")
        by_label[key] = _finite(value)
        name = canonical_label(label)
        if name is not None and name not in sensors:
            sensors[name] = _finite(value)
    channels = {ch: (level_of(sensors.get(ch)), sensors.get(ch)) for ch in EPOC_CHANNELS}
    return QualityReading(
        source_of_quality="emotivpro", stream=stream,
        battery_percent=by_label.get("batterypercent", by_label.get("battery")),
        overall=by_label.get("overall"),
        channels=channels, t=t,
        signal=by_label.get("signal", by_label.get("sampleratequality")),
    )


def worst_of(readings: Iterable[QualityReading]) -> QualityReading | None:
    """Per electrode the worst level (and lowest value) of ``readings``; the lowest
    battery and overall. ``None`` for no readings."""
    items = list(readings)
    if not items:
        return None
    order = {name: k for k, name in LEVELS.items()}
    channels: dict[str, tuple[str, float | None]] = {}
    for ch in EPOC_CHANNELS:
        seen = [r.channels.get(ch, ("no data", None)) for r in items]
        channels[ch] = min(seen, key=lambda lv: (order.get(lv[0], 0), lv[1] if lv[1] is not None else -1))

    def lowest(values: Iterable[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    return QualityReading(items[0].source_of_quality, items[0].stream,
                          lowest(r.battery_percent for r in items), lowest(r.overall for r in items),
                          channels, items[0].t, lowest(r.signal for r in items))


def stream_prefix(eeg_name: str) -> str:
    """The name prefix EmotivPRO shares between an EEG stream and its companions
    (``EmotivDataStream-EEG`` -> ``EmotivDataStream-``)."""
    if eeg_name.upper().endswith("-EEG"):
        return eeg_name[:-3]
    return eeg_name + "-"


def match_quality_streams(eeg_name: str, eeg_host: str, infos: Iterable[Any]) -> list[Any]:
    """The quality streams (pylsl ``StreamInfo``) that belong to an EEG stream: a quality
    type, the same host, the same name prefix; most preferred first."""
    prefix = stream_prefix(eeg_name)
    rank = {t.lower(): k for k, t in enumerate(QUALITY_TYPES)}
    found = [i for i in infos if i.type().strip().lower() in rank and i.hostname() == eeg_host
             and i.name().startswith(prefix)]
    return sorted(found, key=lambda i: rank[i.type().strip().lower()])


@dataclass
class _History:
    readings: deque[QualityReading] = field(default_factory=lambda: deque(maxlen=7200))  # an hour at 2 Hz


class QualityReader:
    """Follows the quality stream that belongs to an LSL EEG stream (background thread).

    Parameters
    ----------
    eeg_name, eeg_host : str
        The EEG stream's name and host (``LslSource.info.name``, its hostname).
    on_error : callable, optional
        ``on_error(message)`` when reading fails (the reader keeps searching).
    stale_after_s : float
        :meth:`latest` returns ``None`` when the newest reading is older than this.
    search_every_s : float
        How often to look for the stream while none is found.
    """

    def __init__(self, eeg_name: str, eeg_host: str, on_error: Callable[[str], None] | None = None,
                 stale_after_s: float = 3.0, search_every_s: float = 2.0) -> None:
        self.eeg_name = eeg_name
        self.eeg_host = eeg_host
        self.on_error = on_error
        self.stale_after_s = stale_after_s
        self.search_every_s = search_every_s
        self.stream: str | None = None
        self.last_error: str | None = None
        self._history = _History()
        self._arrived = 0.0  # monotonic time of the newest reading
        self._searched = False  # the first search is over
        self._found = False  # some search found a quality stream
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> QualityReader:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="duygu-quality", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def __enter__(self) -> QualityReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def latest(self) -> QualityReading | None:
        """The newest reading, or ``None`` when there is none or it is stale."""
        with self._lock:
            if not self._history.readings or time.monotonic() - self._arrived > self.stale_after_s:
                return None
            return self._history.readings[-1]

    def wait_for_reading(self, timeout_s: float) -> QualityReading | None:
        """Block until a reading arrives (or the timeout ends)."""
        with self._new:
            self._new.wait_for(lambda: bool(self._history.readings), timeout=timeout_s)
        return self.latest()

    def wait_until_ready(self, timeout_s: float) -> QualityReading | None:
        """Block until the first reading, or until the first search found no quality
        stream at all (about a second), or the timeout; return the latest reading."""
        with self._new:
            self._new.wait_for(lambda: bool(self._history.readings) or (self._searched and not self._found),
                               timeout=timeout_s)
        return self.latest()

    def worst_between(self, t0: float, t1: float) -> QualityReading | None:
        """The worst quality of the readings stamped in ``[t0, t1]`` (EEG clock)."""
        with self._lock:
            items = [r for r in self._history.readings if t0 <= r.t <= t1]
        return worst_of(items)

    # -- thread -------------------------------------------------------------------------
    def _report(self, message: str) -> None:
        if message == self.last_error:  # the same failure on a retry: said once
            log.debug(message)
        else:
            log.warning(message)
        self.last_error = message
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("quality error listener failed")

    def _run(self) -> None:
        try:
            self._search_and_read()
        except Exception as exc:  # never vanish: the reason is kept and told
            self._report(f"quality reader stopped: {type(exc).__name__}: {exc}")

    def _search_and_read(self) -> None:
        import pylsl
        import pylsl.util

        failed: set[str] = set()  # streams that broke: another one of this headset goes first
        while not self._stop.is_set():
            found = match_quality_streams(self.eeg_name, self.eeg_host, pylsl.resolve_streams(wait_time=1.0))
            found = [i for i in found if i.name() not in failed] or found
            with self._new:
                self._searched, self._found = True, self._found or bool(found)
                self._new.notify_all()
            if not found:
                self._stop.wait(self.search_every_s)
                continue
            info = found[0]
            try:
                inlet = pylsl.StreamInlet(info, max_buflen=10, recover=False,
                                          processing_flags=pylsl.proc_clocksync | pylsl.proc_monotonize)
                full = inlet.info(timeout=5.0)
                labels = [label or "" for label in (full.get_channel_labels() or [])]
                if not any(canonical_label(label) for label in labels):
                    raise ValueError(f"no EPOC sensor labels in {labels[:6]}")
                self.stream = info.name()
                while not self._stop.is_set():
                    samples, stamps = inlet.pull_chunk(timeout=0.5)
                    for values, t in zip(samples, stamps, strict=False):
                        reading = reading_from_sample(labels, values, info.name(), float(t))
                        with self._new:
                            self._history.readings.append(reading)
                            self._arrived = time.monotonic()
                            self._new.notify_all()
            except pylsl.util.LostError:
                log.info("quality stream %s vanished", info.name())
            except Exception as exc:  # a broken outlet must not end the search; say why
                failed.add(info.name())
                self._report(f"quality stream {info.name()!r}: {type(exc).__name__}: {exc}")
            self.stream = None
            self._stop.wait(1.0)
