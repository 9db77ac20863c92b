"""Reads of the session store that several views need, as plain rows (run in workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def list_sessions(store_path: Path) -> list[dict[str, Any]]:
    """Sessions in the store as plain rows; none if the store does not exist yet."""
    from acquisition.store.sqlite import SessionStore

    if not Path(store_path).exists():
        return []
    store = SessionStore(store_path, readonly=True)
    try:
        return [s.as_dict() for s in store.sessions()]
    finally:
        store.close()


def session_trials(store_path: Path, session_id: int) -> list[dict[str, Any]]:
    """The trials of one session as rows."""
    from acquisition.store.sqlite import SessionStore

    store = SessionStore(store_path, readonly=True)
    try:
        rows = []
        for t in store.trials(session_id):
            rows.append({k: getattr(t, k, None) for k in ("stimulus_id", "intended", "label", "onset_t", "offset_t")})
        return rows
    finally:
        store.close()
