"""Where the app's file dialogs open: the user's data folder, never the installation."""

from __future__ import annotations

import os
from pathlib import Path


def user_folder(*parts: str) -> Path:
    """``<user data dir>/<parts>`` (``DUYGU_DATA_DIR`` or platformdirs' user data dir),
    created if missing, so a dialog opens there and not in the current directory."""
    base = os.environ.get("DUYGU_DATA_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("duygu", appauthor=False)
    folder = Path(base).expanduser().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: the dialog starts at the nearest existing parent
        pass
    return folder


def unique_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``… whichever does not exist yet."""
    if not folder.exists():
        return folder
    k = 2
    while folder.with_name(f"{folder.name}-{k}").exists():
        k += 1
    return folder.with_name(f"{folder.name}-{k}")
