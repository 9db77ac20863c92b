"""Widgets the views are built from (no view of their own, no app state)."""

from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)
