"""Source specifications: the strings users type to pick a source.

``simulated[:SEED]`` (``?participant=P07&strength=0.6&dropouts=yes``), ``lsl:NAME``, ``lsl:type=EEG``, ``brainflow:BOARD`` (an id or a
``BoardIds`` name), ``replay:PATH[@SPEED]``; options follow a ``?`` as ``key=value``
pairs joined by ``&``: ``lsl:NAME?restamp=arrival``,
``brainflow:PLAYBACK_FILE_BOARD?file=rec.csv&master_board=SYNTHETIC_BOARD``,
``replay:rec.xdf?stream=EEG-1``.
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
    options: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        query = ("?" + "&".join(f"{k}={v}" for k, v in self.options)) if self.options else ""
        if self.kind == "replay" and self.speed != 1.0:
            return f"replay:{self.target}@{self.speed:g}{query}"
        return (f"{self.kind}:{self.target}" if self.target else self.kind) + query


#: BrainFlowInputParams fields a ``brainflow:`` spec may set.
#: (every field of BrainFlow 5's ``BrainFlowInputParams``; a test checks the list is complete)
BRAINFLOW_PARAMS: tuple[str, ...] = ("serial_port", "mac_address", "ip_address", "ip_address_aux", "ip_address_anc",
                                     "ip_port", "ip_port_aux", "ip_port_anc", "ip_protocol", "other_info", "timeout",
                                     "serial_number", "file", "file_aux", "file_anc", "master_board")

#: Options each kind accepts after ``?``: allowed values, or ``None`` for any value.
OPTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "simulated": {"participant": None, "strength": None, "dropouts": ("yes", "no")},
    "lsl": {"restamp": ("arrival",)},
    "brainflow": dict.fromkeys(BRAINFLOW_PARAMS),
    "replay": {"stream": None},
}


def _split_options(kind: str, rest: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if kind not in OPTIONS or "?" not in rest:
        return rest, ()
    target, _, query = rest.partition("?")
    allowed = OPTIONS[kind]
    options = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or key not in allowed:
            raise SourceError(f"{kind} source option must be one of {', '.join(f'{k}=...' for k in allowed)}, "
                              f"got {part.strip()!r}")
        rule = allowed[key]
        if rule is not None and value not in rule:
            raise SourceError(f"{kind} source option {key} must be {' or '.join(rule)}, got {value!r}")
        if not value:
            raise SourceError(f"{kind} source option {key} needs a value, got {part.strip()!r}")
        options.append((key, value))
    return target, tuple(options)


def parse_source_spec(spec: str) -> SourceSpec:
    """Parse a source specification, or raise :class:`SourceError` naming the problem."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    if "?" in kind:  # simulated?participant=P07 (no seed)
        kind, _, query = kind.partition("?")
        rest = f"{rest}?{query}" if not rest else f"?{query}:{rest}"
    kind = kind.lower()
    if kind not in KINDS:
        raise SourceError(
            f"unknown source spec {spec!r}: expected simulated[:SEED], lsl:NAME, "
            "lsl:type=EEG, brainflow:BOARD[?key=value&...] or replay:PATH[@SPEED]"
        )
    rest, options = _split_options(kind, rest)
    if kind == "simulated":
        if rest and not rest.lstrip("-").isdigit():
            raise SourceError(f"simulated seed must be an integer, got {rest!r}")
        opts = dict(options)
        if "strength" in opts:
            try:
                strength = float(opts["strength"])
            except ValueError:
                strength = -1.0
            if not (math.isfinite(strength) and strength >= 0):
                raise SourceError(f"simulated strength must be a number >= 0, got {opts['strength']!r}")
        if "participant" in opts:
            from acquisition.store.sqlite import validate_participant

            try:
                validate_participant(opts["participant"])
            except Exception as exc:
                raise SourceError(f"simulated participant: {exc}") from None
        return SourceSpec("simulated", rest or "0", options=options)
    if not rest:
        raise SourceError(f"source spec {spec!r} needs a target after '{kind}:'")
    if kind == "brainflow":
        board = rest.strip()
        if not (board.lstrip("-").isdigit() or board.replace("_", "").isalnum()):
            raise SourceError(f"brainflow board must be an id or a BoardIds name, got {rest!r}")
        for key in ("ip_port", "ip_port_aux", "ip_port_anc", "ip_protocol", "timeout"):
            value = dict(options).get(key)
            if value is not None and not value.isdigit():
                raise SourceError(f"brainflow option {key} must be a whole number, got {value!r}")
        return SourceSpec("brainflow", board, options=options)
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
        return SourceSpec("replay", path, speed, options=options)
    return SourceSpec("lsl", rest, options=options)


def open_source(spec: str | SourceSpec, **kwargs: Any) -> BaseSource:
    """Build (but do not connect) the source a specification names."""
    parsed = parse_source_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "simulated":
        from acquisition.sources.simulated import SimulatedEpocSource

        opts = dict(parsed.options)
        sim_kwargs: dict[str, Any] = {"participant": opts.get("participant"), "dropouts": opts.get("dropouts") == "yes"}
        if "strength" in opts:
            sim_kwargs["strength"] = float(opts["strength"])
        return SimulatedEpocSource(seed=int(parsed.target), **sim_kwargs, **kwargs)
    if parsed.kind == "lsl":
        from acquisition.sources.lsl import LslSource

        opts = dict(parsed.options)
        return LslSource(parsed.target, restamp=opts.get("restamp") == "arrival", **kwargs)
    if parsed.kind == "brainflow":
        from acquisition.sources.brainflow import BrainFlowSource

        return BrainFlowSource(parsed.target, params=dict(parsed.options), **kwargs)
    from acquisition.sources.replay import ReplaySource

    return ReplaySource(parsed.target, speed=parsed.speed, stream=dict(parsed.options).get("stream"), **kwargs)
