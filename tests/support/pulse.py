"""A private PulseAudio server with a null sink, for tests that play real audio.

The server is a child process of the test (``pulseaudio --daemonize=no``), with its own
runtime directory, socket and home under a temporary folder, so parallel test workers
never share one. It is started and stopped by its pid, never by name. Clients are
pointed at it with ``PULSE_SERVER``; sounddevice then sees the ALSA ``pulse`` device
(PortAudio is re-initialised so it enumerates devices again).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

READY_LINE = "Daemon startup complete"


@dataclass
class PulseServer:
    """A running PulseAudio child process."""

    process: subprocess.Popen[str]
    runtime_dir: Path
    socket_path: Path
    log: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def server(self) -> str:
        """Value for ``PULSE_SERVER``."""
        return f"unix:{self.socket_path}"

    def env(self) -> dict[str, str]:
        """Environment variables that point a client (or a subprocess) at this server."""
        return {
            "PULSE_SERVER": self.server,
            "PULSE_RUNTIME_PATH": str(self.runtime_dir / "pulse"),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server (by its pid) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def start_pulse(runtime_dir: Path, timeout_s: float = 15.0) -> PulseServer:
    """Start ``pulseaudio`` with a null sink ``out`` (the default sink; its monitor is the
    default source) and wait for its "startup complete" log line.

    Raises
    ------
    RuntimeError
        ``pulseaudio`` is not installed or did not start in time (with its log).
    """
    exe = shutil.which("pulseaudio")
    if exe is None:
        raise RuntimeError("pulseaudio is not installed (make setup installs it)")
    runtime_dir.mkdir(parents=True, exist_ok=True)
    (runtime_dir / "pulse").mkdir(exist_ok=True)
    socket_path = runtime_dir / "native"
    env = dict(os.environ)
    env.update({
        "HOME": str(runtime_dir),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "PULSE_RUNTIME_PATH": str(runtime_dir / "pulse"),
        "XDG_CONFIG_HOME": str(runtime_dir / "config"),
    })
    cmd = [
        exe, "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
        "--disallow-exit", "--log-target=stderr", "--log-level=info",
        "--high-priority=yes", "--realtime=yes",
        "--load=module-null-sink sink_name=out rate=44100",
        f"--load=module-native-protocol-unix socket={socket_path} auth-anonymous=1",
        "--load=module-always-sink",
    ]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=runtime_dir)
    server = PulseServer(proc, runtime_dir, socket_path)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.log.append(line.rstrip())
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="pulse-log", daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=timeout_s)
            if line is None:
                raise RuntimeError("pulseaudio exited during start-up: " + " | ".join(server.log[-5:]))
            if READY_LINE in line:
                return server
    except queue.Empty:
        server.stop()
        raise RuntimeError("pulseaudio did not start in time: " + " | ".join(server.log[-5:])) from None


@contextmanager
def private_pulse(monkeypatch: object) -> Iterator[dict[str, object]]:
    """A private server for one test: this process's clients (sounddevice) point at it
    through ``monkeypatch``; yields ``{"servers": [...], "restart": fn}`` where ``restart``
    starts a new server on the same socket (clients find it again)."""
    runtime = Path(tempfile.mkdtemp(prefix="duygu-pa-"))  # unix socket paths are short
    servers: list[PulseServer] = [start_pulse(runtime)]
    try:
        for key, value in servers[0].env().items():
            monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
        reinit_portaudio()

        def restart() -> None:
            servers.append(start_pulse(runtime))

        yield {"servers": servers, "restart": restart}
    finally:
        for server in servers:
            server.stop()
        reinit_portaudio()
        shutil.rmtree(runtime, ignore_errors=True)


def reinit_portaudio() -> None:
    """Make sounddevice enumerate devices again (after ``PULSE_SERVER`` changed)."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


class MonitorRecorder:
    """Record the null sink's monitor (``device="pulse"``, the default source) with the
    ADC time of every block on the EEG clock (LSL ``local_clock``).

    The input callback's ``inputBufferAdcTime`` is on PortAudio's clock; it is mapped to
    ``local_clock`` with an offset measured on the open stream, the same way the player
    maps its DAC times, so both sides are on one clock. A small capture latency (5 ms)
    keeps the null sink rendering in small blocks, so the monitor's timestamps stay
    within a fraction of a millisecond of the sink's clock even on a busy machine (with
    50 ms, run-to-run biases of several ms appeared under full CPU load).
    """

    def __init__(self, samplerate_hz: float = 44100.0, device: str = "pulse", latency_s: float = 0.005) -> None:
        self.latency_s = latency_s
        self.samplerate_hz = samplerate_hz
        self.device = device
        self._blocks: list[tuple[float, object]] = []
        self._intercepts: list[tuple[float, float]] = []
        self._frames = 0
        self._cond = threading.Condition()
        self._stream = None
        self.clock_offset_s = 0.0

    def _callback(self, indata, frames, time, status) -> None:  # type: ignore[no-untyped-def]
        adc = float(time.inputBufferAdcTime)
        with self._cond:
            self._blocks.append((adc, indata[:, 0].copy()))
            self._intercepts.append((float(time.currentTime), adc - self._frames / self.samplerate_hz))
            self._frames += frames
            self._cond.notify_all()

    def start(self, settle_timeout_s: float = 5.0, window_s: float = 0.4) -> bool:
        """Start recording; return whether the ADC timing settled within the timeout."""
        import sounddevice as sd

        from acquisition.sources.base import local_clock

        self._stream = sd.InputStream(device=self.device, channels=1, samplerate=self.samplerate_hz,
                                      dtype="float32", latency=self.latency_s, callback=self._callback)
        self._stream.start()
        best = (float("inf"), 0.0)
        for _ in range(7):
            before = local_clock()
            stream_t = float(self._stream.time)
            after = local_clock()
            best = min(best, (after - before, (before + after) / 2 - stream_t))
        self.clock_offset_s = best[1]

        def settled() -> bool:
            pts = self._intercepts
            if len(pts) < 4 or pts[-1][0] - pts[0][0] < window_s:
                return False
            recent = [b for a, b in pts if a >= pts[-1][0] - window_s]
            return len(recent) >= 4 and max(recent) - min(recent) < 0.0005

        with self._cond:
            return self._cond.wait_for(settled, timeout=settle_timeout_s)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def signal(self):  # type: ignore[no-untyped-def]
        """``(samples, times)``: the recording and each sample's time on the EEG clock."""
        import numpy as np

        with self._cond:
            blocks = list(self._blocks)
        x = np.concatenate([b for _, b in blocks])
        t = np.concatenate([adc + np.arange(len(b)) / self.samplerate_hz for adc, b in blocks])
        return x, t + self.clock_offset_s


def find_onsets(x, t, threshold: float = 1e-3, min_gap_s: float = 0.1):  # type: ignore[no-untyped-def]
    """Times of the first sample above ``threshold`` after at least ``min_gap_s`` of
    silence (the null sink's monitor is digitally silent between stimuli)."""
    import numpy as np

    loud = np.flatnonzero(np.abs(x) > threshold)
    if len(loud) == 0:
        return np.array([])
    starts = loud[np.r_[True, np.diff(t[loud]) > min_gap_s]]
    return t[starts]
