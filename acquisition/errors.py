"""Typed exceptions shared by every engine layer.

Every message names the parameter, the value and the rule, on one line, so the CLI and
the GUI can show it as it is.
"""

from __future__ import annotations


class DuyguError(Exception):
    """Base class of every error Duygu reports to a user."""


class SourceError(DuyguError):
    """A signal source cannot be opened, read or understood."""


class DataError(DuyguError):
    """Input data is malformed (missing columns, non-numeric cells, NaN, ...)."""


class ProtocolError(DuyguError):
    """A session protocol file or an evaluation protocol is invalid."""


class ModelFormatError(DuyguError):
    """A model bundle is foreign, tampered with, or does not fit the source."""


class StoreError(DuyguError):
    """The session store cannot be opened or written."""


class LabelError(ProtocolError, StoreError):
    """A label or a SAM rating is not valid (refused by the session and by the store alike)."""
