"""A BrainFlow board as a Duygu source: any board, with the parameters it needs.

BrainFlow has no Emotiv board, so this source is for other amplifiers, the synthetic
board (``BoardIds.SYNTHETIC_BOARD`` = -1, 250 Hz, 16 EEG rows) and BrainFlow's playback
board (a recorded file). The board is named by id or ``BoardIds`` name; its
``BrainFlowInputParams`` (``serial_port``, ``ip_address``, ``ip_port``, ``mac_address``,
``serial_number``, ``file``, ``master_board``, ``timeout``, ``other_info``, ...) come from
the spec: ``brainflow:PLAYBACK_FILE_BOARD?file=rec.csv&master_board=SYNTHETIC_BOARD``.
EEG rows are mapped to the EPOC+ labels by name when the board's EEG names include all 14
of them; otherwise the first 14 EEG rows are used *as if* they were AF3 ... AF4. Either
way the board's real names are kept: :attr:`DeviceInfo.channel_map` (EPOC name -> board
name) travels with every recording, into the CSV header (``AF3 (board Fz)``), the store
and the exports. Samples are resampled to 128 Hz with a stateful polyphase filter and stamped
on the LSL ``local_clock`` (BrainFlow stamps samples with Unix time; the offset between
the two clocks is measured when the board is opened).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import types
from typing import Any

import numpy as np

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ, match_channels
from acquisition.errors import SourceError
from acquisition.sources.base import BaseSource, DeviceInfo, ReadResult, local_clock
from acquisition.sources.resample import StreamResampler

log = logging.getLogger(__name__)

_LOAD_LOCK = threading.Lock()
#: largest relative change of the 1/128 s spacing the timestamp grid may make
MAX_SLEW = 0.002


@functools.cache
def _brainflow() -> types.ModuleType:
    """Import ``brainflow.board_shim`` with its native library loaded and logging off.

    BrainFlow 5.23 on Python 3.11 locates its bundled library through
    ``pkg_resources``, which setuptools >= 81 no longer ships. When that import would
    fail, a stand-in ``pkg_resources`` that resolves the path next to the module is put
    in ``sys.modules`` only while the library loads, then removed again.
    """
    with _LOAD_LOCK:
        from brainflow import board_shim

        if sys.version_info < (3, 12) and "pkg_resources" not in sys.modules:
            try:
                import pkg_resources  # noqa: F401
            except ImportError:
                stand_in = types.ModuleType("pkg_resources")

                def resource_filename(package: str, path: str) -> str:
                    module_file = sys.modules[package].__file__ or ""
                    return os.path.join(os.path.dirname(module_file), path)

                stand_in.resource_filename = resource_filename  # type: ignore[attr-defined]
                sys.modules["pkg_resources"] = stand_in
                try:
                    board_shim.BoardControllerDLL.get_instance()
                finally:
                    del sys.modules["pkg_resources"]
        board_shim.BoardShim.disable_board_logger()
        return board_shim


def board_name(board_id: int) -> str:
    """BrainFlow's name of a board id (``SYNTHETIC_BOARD``), or ``board <id>``."""
    board_shim = _brainflow()
    try:
        return str(board_shim.BoardIds(board_id).name)
    except ValueError:
        return f"board {board_id}"


def board_ids() -> dict[str, int]:
    """Every board BrainFlow knows, name -> id (for ``duygu sources``)."""
    board_shim = _brainflow()
    return {b.name: int(b.value) for b in board_shim.BoardIds}


def resolve_board(board: int | str) -> int:
    """A board id from an id or a ``BoardIds`` name (``SYNTHETIC_BOARD``, ``-1``).

    Raises
    ------
    SourceError
        An unknown name or id (the message says where to find the names).
    """
    board_shim = _brainflow()
    text = str(board).strip()
    if text.lstrip("-").isdigit():
        value = int(text)
        try:
            board_shim.BoardIds(value)
        except ValueError:
            raise SourceError(f"brainflow board id {value} is unknown to BrainFlow (see 'duygu sources')") from None
        return value
    try:
        return int(board_shim.BoardIds[text.upper()].value)
    except KeyError:
        raise SourceError(f"brainflow board must be a BoardIds name or id, got {text!r} "
                          "(see 'duygu sources' for the names)") from None


def input_params(params: dict[str, str]) -> Any:
    """``BrainFlowInputParams`` with ``params`` set (numbers and board names converted)."""
    board_shim = _brainflow()
    out = board_shim.BrainFlowInputParams()
    for key, value in params.items():
        if not hasattr(out, key):
            raise SourceError(f"brainflow parameter must be one of BrainFlowInputParams' fields, got {key!r}")
        if key == "master_board":
            setattr(out, key, resolve_board(value))
        elif key in ("ip_port", "timeout", "ip_protocol", "ip_port_aux", "ip_port_anc"):
            try:
                setattr(out, key, int(value))
            except ValueError:
                raise SourceError(f"brainflow parameter {key} must be a whole number, got {value!r}") from None
        else:
            setattr(out, key, str(value))
    return out


def map_eeg_rows(eeg_rows: list[int], names: list[str], board: str) -> tuple[list[int], list[str]]:
    """Pick the 14 data rows to use as AF3 ... AF4.

    Parameters
    ----------
    eeg_rows : list of int
        The board's EEG rows (``BoardShim.get_eeg_channels``).
    names : list of str
        Their electrode names (empty when the board has none).
    board : str
        The board, for messages.

    Returns
    -------
    rows : list of int
        Rows in EPOC order: matched by name when all 14 EPOC labels are present,
        otherwise the first 14 EEG rows.
    notes : list of str
        Empty when matched by name, else a sentence saying which channel stands for which.

    Raises
    ------
    SourceError
        If the board has fewer than 14 EEG rows.
    """
    if len(eeg_rows) < len(EPOC_CHANNELS):
        raise SourceError(
            f"brainflow board {board} has {len(eeg_rows)} EEG channels; "
            f"Duygu needs at least {len(EPOC_CHANNELS)}"
        )
    order = match_channels(names) if len(names) == len(eeg_rows) else None
    if order is not None:
        return [eeg_rows[i] for i in order], []
    rows = eeg_rows[: len(EPOC_CHANNELS)]
    used = names[: len(EPOC_CHANNELS)] if len(names) == len(eeg_rows) else [f"row {r}" for r in rows]
    mapping = ", ".join(f"{src}->{dst}" for src, dst in zip(used, EPOC_CHANNELS, strict=True))
    note = (
        f"board {board} does not have the 14 EPOC+ electrodes: its first 14 EEG "
        f"channels are used as the EPOC+ channels ({mapping})"
    )
    return rows, [note]


class BrainFlowSource(BaseSource):
    """A BrainFlow board, resampled to 128 Hz, in EPOC+ channel order.

    Parameters
    ----------
    board_id : int or str
        BrainFlow board id (-1 is the synthetic board) or ``BoardIds`` name.
    serial_port : str
        Serial port for boards that need one (``/dev/ttyUSB0``); also in ``params``.
    params : dict, optional
        ``BrainFlowInputParams`` fields (``file``, ``master_board``, ``ip_address``, ...).
    **kwargs
        :class:`~acquisition.sources.base.BaseSource` options (``buffer_seconds``, ...).
    """

    kind = "brainflow"

    def __init__(self, board_id: int | str, serial_port: str = "", params: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.board_id = resolve_board(board_id)
        self.params = dict(params or {})
        if serial_port:
            self.params.setdefault("serial_port", serial_port)
        self.serial_port = self.params.get("serial_port", "")
        self.channel_map: dict[str, str] = {}
        self._board: Any = None
        self._rows: list[int] = []
        self._ts_row = -1
        self._clock_offset_s = 0.0
        self._resampler: StreamResampler | None = None
        self._grid_t0: float | None = None
        self._grid_offset_s = 0.0
        self._n_out = 0

    # -- hooks ----------------------------------------------------------------------
    def _open(self, timeout_s: float) -> DeviceInfo:
        board_shim = _brainflow()
        shim_cls = board_shim.BoardShim
        error_cls = board_shim.BrainFlowError
        name = board_name(self.board_id)
        params = input_params(self.params)
        # a playback or streaming board describes the board it plays (its master board)
        describe = self.board_id
        if params.master_board not in (None, -100) and self.board_id in (
                int(board_shim.BoardIds.PLAYBACK_FILE_BOARD.value), int(board_shim.BoardIds.STREAMING_BOARD.value)):
            describe = int(params.master_board)
        try:
            sfreq_hz = float(shim_cls.get_sampling_rate(describe))
            eeg_rows = list(shim_cls.get_eeg_channels(describe))
            self._ts_row = int(shim_cls.get_timestamp_channel(describe))
        except error_cls as exc:
            raise SourceError(f"brainflow board {name} ({self.board_id}) is not usable: {exc}"
                              + (" (a playback board needs ?file=...&master_board=...)" if describe == self.board_id
                                 and self.board_id < -1 else "")) from None
        try:
            names = [str(n) for n in shim_cls.get_eeg_names(describe)]
        except error_cls:
            names = []  # some boards have no fixed electrode names
        self._rows, notes = map_eeg_rows(eeg_rows, names, f"{name} ({self.board_id})")
        row_names = {r: (names[eeg_rows.index(r)] if len(names) == len(eeg_rows) else f"row {r}") for r in eeg_rows}
        self.channel_map = {epoc: row_names[r] for epoc, r in zip(EPOC_CHANNELS, self._rows, strict=True)
                            if row_names[r] != epoc}
        for note in notes:
            log.warning(note)
        if sfreq_hz != SFREQ_HZ:
            notes.append(f"resampled from {sfreq_hz:g} Hz to {SFREQ_HZ:g} Hz")

        board = _quiet_shim_class()(self.board_id, params)
        try:
            board.prepare_session()
            board.start_stream(int(sfreq_hz * 60))
        except error_cls as exc:
            _release(board)
            given = ", ".join(f"{k}={v}" for k, v in self.params.items())
            raise SourceError(
                f"brainflow board {name} ({self.board_id}) could not start: {exc}"
                + (f" (with {given})" if given else " (does it need ?serial_port=..., ?ip_address=... or ?file=...?)")
            ) from None
        self._board = board
        self._clock_offset_s = local_clock() - time.time()
        self._resampler = StreamResampler(sfreq_hz, SFREQ_HZ, len(EPOC_CHANNELS))
        self._grid_t0, self._grid_offset_s, self._n_out = None, 0.0, 0
        return DeviceInfo(
            kind=self.kind,
            name=f"BrainFlow {name}",
            native_sfreq_hz=sfreq_hz,
            native_channels=tuple(names),
            serial=self.serial_port,
            notes=notes,
            channel_map=dict(self.channel_map),
        )

    def _read(self, timeout_s: float) -> ReadResult | None:
        board, resampler = self._board, self._resampler
        if board is None or resampler is None:
            return None
        deadline = time.monotonic() + timeout_s
        while board.get_board_data_count() == 0:
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(0.01, timeout_s))  # BrainFlow offers no blocking read
        raw = board.get_board_data()
        if raw.shape[1] == 0:
            return None
        data = raw[self._rows].T
        times = raw[self._ts_row] + self._clock_offset_s
        out, out_times = resampler.process(data, times)
        if len(out) == 0:
            return None
        return ReadResult(out, self._dejitter(out_times))

    def _dejitter(self, times: np.ndarray) -> np.ndarray:
        """Put samples on a regular 1/128 s grid that follows the board clock slowly.

        The board stamps samples as they reach the host, with jitter (bursts of late
        stamps when the machine is busy); the grid's offset tracks the mean residual with
        a 10 s time constant, and any change is spread over the chunk's samples at no more
        than :data:`MAX_SLEW` of their spacing, so the spacing stays within 0.2 % of
        1/128 s while a clock drift (tens of ppm in practice) is still followed.
        """
        n = len(times)
        k = self._n_out + np.arange(n)
        if self._grid_t0 is None:
            self._grid_t0 = float(times[0])
            self._grid_offset_s = float(np.mean(times - self._grid_t0 - k / SFREQ_HZ))
        grid = self._grid_t0 + k / SFREQ_HZ
        weight = 1.0 - np.exp(-n / (SFREQ_HZ * 10.0))
        offset_s = self._grid_offset_s
        step_s = weight * (float(np.mean(times - grid)) - offset_s)
        limit_s = MAX_SLEW * n / SFREQ_HZ
        step_s = min(max(step_s, -limit_s), limit_s)
        self._grid_offset_s = offset_s + step_s
        self._n_out += n
        return grid + offset_s + step_s * np.arange(1, n + 1) / n

    def _close(self) -> None:
        board, self._board = self._board, None
        if board is not None:
            _release(board)


def _release(board: Any) -> None:
    """Stop and release a BrainFlow session; never raises."""
    board_shim = _brainflow()
    try:
        if board.is_prepared():
            try:
                board.stop_stream()
            except board_shim.BrainFlowError as exc:  # not streaming
                log.debug("brainflow stop_stream: %s", exc)
            board.release_session()
    except board_shim.BrainFlowError as exc:
        log.warning("brainflow board could not be released: %s", exc)


@functools.cache
def _quiet_shim_class() -> type:
    board_shim = _brainflow()

    class QuietBoardShim(board_shim.BoardShim):  # type: ignore[name-defined]
        """A BoardShim whose session :class:`BrainFlowSource` releases explicitly.

        BrainFlow's own destructor queries the native library, which fails noisily when
        the interpreter is shutting down; the source releases in ``_close`` instead.
        """

        def __del__(self) -> None:
            return None

    return QuietBoardShim
