"""Glue between the session view and :mod:`acquisition.runner` (filled in when it lands)."""

from __future__ import annotations

from typing import Any


def describe_event(event: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        return {"kind": str(event.get("kind", "event")), **event}
    return {"kind": str(getattr(event, "kind", "event"))}


def describe_result(result: Any) -> tuple[str, str]:
    return "completed", f"session finished: {result}"


def run_session(options: dict[str, Any], on_event: Any, prompt: Any, set_runner: Any, cancelled: Any) -> Any:
    from acquisition.errors import DuyguError

    raise DuyguError("the session runner (acquisition.runner) is not available yet")
