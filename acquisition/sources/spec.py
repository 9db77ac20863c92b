"""Source specifications: the strings users type to pick a source.

``simulated[:SEED]``, ``lsl:NAME``, ``lsl:type=EEG``, ``brainflow:BOARD_ID``,
``replay:PATH[@SPEED]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from acquisition.errors import SourceError
from acquisition.sources.base import BaseSource

KINDS = ("simulated", "lsl", "brainflow", "replay")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source specification."""

    kind: str
    target: str
    speed: float = 1.0

    def __str__(self) -> str:
        if self.kind == "replay" and self.speed != 1.0:
            return f"replay:{self.target}@{self.speed:g}"
        return f"{self.kind}:{self.target}" if self.target else self.kind


def parse_source_spec(spec: str) -> SourceSpec:
    """Parse a source specification, or raise :class:`SourceError` naming the problem."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise SourceError(
            f"unknown source spec {spec!r}: expected simulated[:SEED], lsl:NAME, "
            "lsl:type=EEG, brainflow:BOARD_ID or replay:PATH[@SPEED]"
        )
    if kind == "simulated":
        if rest and not rest.lstrip("-").isdigit():
            raise SourceError(f"simulated seed must be an integer, got {rest!r}")
        return SourceSpec("simulated", rest or "0")
    if not rest:
        raise SourceError(f"source spec {spec!r} needs a target after '{kind}:'")
    if kind == "brainflow":
        try:
            int(rest)
        except ValueError:
            raise SourceError(f"brainflow board id must be an integer, got {rest!r}") from None
        return SourceSpec("brainflow", rest)
    if kind == "replay":
        path, at, speed_text = rest.rpartition("@")
        if not at or "/" in speed_text or "\\" in speed_text:  # an '@' inside the path
            path, at, speed_text = rest, "", ""
        speed = 1.0
        if at:
            try:
                speed = float(speed_text.rstrip("xX"))
            except ValueError:
                raise SourceError(f"replay speed must be a number, got {speed_text!r}") from None
            if not math.isfinite(speed) or speed <= 0:
                raise SourceError(f"replay speed must be > 0 and finite, got {speed_text!r}")
        if not path.strip():
            raise SourceError(f"source spec {spec!r} needs a file path after 'replay:'")
        return SourceSpec("replay", path, speed)
    return SourceSpec("lsl", rest)


def open_source(spec: str | SourceSpec, **kwargs: Any) -> BaseSource:
    """Build (but do not connect) the source a specification names."""
    parsed = parse_source_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "simulated":
        from acquisition.sources.simulated import SimulatedEpocSource

        return SimulatedEpocSource(seed=int(parsed.target), **kwargs)
    if parsed.kind == "lsl":
        from acquisition.sources.lsl import LslSource

        return LslSource(parsed.target, **kwargs)
    if parsed.kind == "brainflow":
        from acquisition.sources.brainflow import BrainFlowSource

        return BrainFlowSource(int(parsed.target), **kwargs)
    from acquisition.sources.replay import ReplaySource

    return ReplaySource(parsed.target, speed=parsed.speed, **kwargs)
