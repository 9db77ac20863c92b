"""Stateful polyphase resampling of a multichannel stream, chunk by chunk.

:class:`StreamResampler` converts a stream at ``in_hz`` to ``out_hz`` (rational ratio
``up/down``) with a linear-phase Kaiser FIR. It keeps the history it needs between
chunks, so resampling a stream in chunks of any size gives the same samples as resampling
it at once. Each output sample is centred on its input position, so its timestamp is the
input clock interpolated there: no group delay in the timestamps (the cost is
``half_len / up`` input samples of latency). Every polyphase branch has unit DC gain, so
the EPOC's ~4200 µV offset passes without ripple. Before the first sample the first value
is held, and :meth:`StreamResampler.flush` holds the last one to finish a stream.

:func:`resample_offline` is the same filter run over a whole recording (replay of files
and stored sessions), so a live stream and its recording give the same samples.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import NDArray
from scipy.signal import firwin


class StreamResampler:
    """Resample ``(n_samples, n_channels)`` chunks from ``in_hz`` to ``out_hz``.

    Parameters
    ----------
    in_hz, out_hz : float
        Input and output rates; their ratio must be a fraction with a denominator
        below 1000 (128/250, 128/256, 128/500, ...).
    n_channels : int
        Channels per sample.
    half_len_factor : int
        Filter half-length in multiples of ``max(up, down)`` (scipy's default is 10).
    """

    def __init__(self, in_hz: float, out_hz: float, n_channels: int, half_len_factor: int = 10):
        ratio = Fraction(out_hz / in_hz).limit_denominator(1000)
        if ratio <= 0:
            raise ValueError(f"rates must be positive, got {in_hz} -> {out_hz}")
        self.up, self.down = ratio.numerator, ratio.denominator
        self.in_hz, self.out_hz, self.n_channels = float(in_hz), float(out_hz), n_channels
        m = max(self.up, self.down)
        half_len = half_len_factor * m
        n_taps = 2 * half_len + 1
        cutoff = 0.9 / m if self.up != self.down else 0.999
        h = firwin(n_taps, cutoff, window=("kaiser", 5.0)) if self.up != self.down else np.array([1.0])
        if self.up == self.down:
            half_len, n_taps = 0, 1
        self._center = half_len
        k = -(-n_taps // self.up)  # taps per phase
        padded = np.zeros(k * self.up)
        padded[:n_taps] = h
        # phases[p, j] = h[p + j*up]; input x[i_max - j] is weighted by phases[p, j]
        phases = padded.reshape(k, self.up).T.copy()
        sums = phases.sum(axis=1, keepdims=True)
        sums[sums == 0] = 1.0
        self._phases = phases / sums  # unit DC gain per branch
        self._k = k
        self.reset()

    def reset(self) -> None:
        """Forget all history (after a gap in the input)."""
        self._hist = np.zeros((0, self.n_channels))
        self._hist_times = np.zeros(0)
        self._hist_start = 0  # absolute input index of _hist[0]
        self._n_in = 0  # input samples seen
        self._n_out = 0  # output samples produced
        self._first: NDArray[np.float64] | None = None
        self._last = np.zeros(self.n_channels)
        self._last_time = 0.0

    @property
    def latency_samples_in(self) -> int:
        """Input samples an output waits for beyond its own position."""
        return -(-self._center // self.up)

    def process(
        self, data: NDArray[np.floating], timestamps: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Feed a chunk; return the output samples now complete and their timestamps."""
        data = np.asarray(data, dtype=np.float64)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if len(data) == 0:
            return np.zeros((0, self.n_channels)), np.zeros(0)
        if self._first is None:
            self._first = data[0].copy()
        self._last = data[-1].copy()
        self._last_time = float(timestamps[-1])
        self._hist = np.concatenate([self._hist, data])
        self._hist_times = np.concatenate([self._hist_times, timestamps])
        self._n_in += len(data)
        up, down, c, k = self.up, self.down, self._center, self._k
        # output j is ready when its newest input i_max = (j*down + c)//up is present
        j_stop = ((self._n_in - 1) * up - c) // down + 1 if self._n_in * up > c else 0
        j = np.arange(self._n_out, max(self._n_out, j_stop))
        if len(j) == 0:
            return np.zeros((0, self.n_channels)), np.zeros(0)
        u = j * down + c
        i_max = u // up
        phase = u % up
        idx = i_max[:, None] - np.arange(k)[None, :]  # (n_out, k) absolute input indices
        rel = idx - self._hist_start
        assert self._first is not None
        before = rel < 0  # before the first sample: hold the first value (no DC step)
        gathered = self._hist[np.clip(rel, 0, len(self._hist) - 1)]
        if before.any():
            gathered[before] = self._first
        out = np.einsum("nk,nkc->nc", self._phases[phase], gathered)
        # timestamps: the input clock interpolated at input position j*down/up
        pos = j * down / up
        t_rel = pos - self._hist_start
        times = np.interp(t_rel, np.arange(len(self._hist_times)), self._hist_times,
                          left=np.nan, right=np.nan)
        if np.isnan(times).any():  # extrapolate linearly at the edges
            dt = 1.0 / self.in_hz
            base = self._hist_times[0]
            nan = np.isnan(times)
            times[nan] = base + t_rel[nan] * dt
        self._n_out = int(j[-1]) + 1
        # keep only the history later outputs can still need
        next_u = self._n_out * down + c
        keep_from = next_u // up - (k - 1) - 1
        drop = max(0, keep_from - self._hist_start)
        if drop:
            self._hist = self._hist[drop:]
            self._hist_times = self._hist_times[drop:]
            self._hist_start += drop
        return out, times

    def flush(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The outputs still held back for the last inputs, then :meth:`reset`.

        Each output whose centre lies on a real input is completed as if the last value
        were held (as the first one is held before the start); outputs beyond the last
        input are not invented.
        """
        n_in, n_out = self._n_in, self._n_out
        out = np.zeros((0, self.n_channels))
        times = np.zeros(0)
        if n_in > 0:
            n_real = (n_in - 1) * self.up // self.down + 1
            pad = self.latency_samples_in + self.down + 1
            pad_data = np.repeat(self._last[None, :], pad, axis=0)
            pad_times = self._last_time + np.arange(1, pad + 1) / self.in_hz
            out, times = self.process(pad_data, pad_times)
            take = max(0, n_real - n_out)
            out, times = out[:take], times[:take]
        self.reset()
        return out, times


def resample_offline(data: NDArray[np.floating], in_hz: float, out_hz: float) -> NDArray[np.float64]:
    """Resample a whole recording ``(n_samples, n_channels)`` with the streaming filter.

    Gives exactly the samples a :class:`StreamResampler` gives for the same input fed in
    chunks of any size and flushed at the end.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"data must have shape (n_samples, n_channels), got {x.shape}")
    rs = StreamResampler(in_hz, out_hz, x.shape[1])
    if rs.up == rs.down or len(x) == 0:
        return x.copy()
    times = np.arange(len(x)) / float(in_hz)
    head, _ = rs.process(x, times)
    tail, _ = rs.flush()
    return np.concatenate([head, tail])
