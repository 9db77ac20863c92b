"""``duygu quality``: the headset's contact quality now (a check before a session)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands._common import add_source_argument, positive_float, write_json

HELP = "print the contact quality of a source: EmotivPRO's own quality stream, or computed from the EEG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_argument(p)
    p.add_argument("--seconds", type=positive_float, default=4.0, metavar="S",
                   help="wait up to S s for EmotivPRO's quality stream; otherwise judge S s of EEG (default 4)")
    p.add_argument("--json", metavar="OUT", help="write the quality as JSON ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from acquisition.sources.spec import open_source

    source = open_source(args.source)
    with source:
        reading = _emotivpro(source, args.seconds)
        quality = reading.as_json() if reading is not None else _computed(source, args.seconds)
    _print(quality, sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        write_json(quality, args.json)
    return 0


def _emotivpro(source: Any, seconds: float) -> Any:
    reader = source.quality_reader()
    if reader is None:
        return None
    with reader:
        return reader.wait_for_reading(seconds)


def _computed(source: Any, seconds: float) -> dict[str, Any]:
    from acquisition.channels import EPOC_CHANNELS
    from processing.quality import channel_quality

    n = round(seconds * source.sfreq_hz)
    source.wait_for_samples(n, timeout_s=seconds / float(getattr(source, "speed", 1.0) or 1.0) + 10.0)
    chunk = source.buffer.latest(n_samples=n)
    if len(chunk) < source.sfreq_hz:
        channels = {ch: {"level": "no data", "value": None} for ch in EPOC_CHANNELS}
    else:
        report = channel_quality(chunk.data, float(source.sfreq_hz), EPOC_CHANNELS)
        channels = {c.channel: {"level": c.level, "value": None, "problems": list(c.problems)}
                    for c in report.channels}
    return {"source_of_quality": "computed", "stream": source.info.name if source.info else "",
            "battery_percent": None, "overall": None, "channels": channels}


def _print(quality: dict[str, Any], out: Any) -> None:
    head = f"contact quality ({quality['source_of_quality']}"
    head += f", {quality['stream']})" if quality.get("stream") else ")"
    extras = [f"{name} {quality[key]:g}%" for key, name in (("battery_percent", "battery"), ("overall", "overall"))
              if quality.get(key) is not None]
    print(head + (": " + ", ".join(extras) if extras else ""), file=out)
    for ch, q in quality["channels"].items():
        value = "" if q.get("value") is None else f"  ({q['value']:g}/4)"
        problems = f"  [{', '.join(q['problems'])}]" if q.get("problems") else ""
        print(f"  {ch:<4} {q['level']}{value}{problems}", file=out)
