"""Markers reach a pylsl inlet in another process (as LabRecorder would see them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acquisition.session.markers import MARKER_STREAM_TYPE, MarkerOutlet

INLET = r"""
import json, sys, pylsl
name, n_expected = sys.argv[1], int(sys.argv[2])
found = pylsl.resolve_byprop("name", name, 1, 20.0)
if not found:
    print(json.dumps({"error": "stream not found"})); sys.exit(1)
info = found[0]
inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
inlet.open_stream(10.0)
print(json.dumps({"ready": True, "type": info.type(), "channels": info.channel_count()}), flush=True)
got = []
while len(got) < n_expected:
    sample, t = inlet.pull_sample(timeout=20.0)
    if sample is None:
        break
    got.append([sample[0], t + inlet.time_correction(5.0)])
print(json.dumps({"markers": got}), flush=True)
"""


def _inlet(name: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", INLET, name, str(n)], stdout=subprocess.PIPE, text=True)


def _ready(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    head = json.loads(line)
    assert head.get("ready"), head
    return head


def _result(proc: subprocess.Popen[str]) -> list[tuple[str, float]]:
    out, _ = proc.communicate(timeout=30)
    return [(text, t) for text, t in json.loads(out.strip().splitlines()[-1])["markers"]]


@pytest.mark.timeout(60)
def test_outlet_markers_arrive_in_another_process(lsl_name: str) -> None:
    outlet = MarkerOutlet(lsl_name)
    proc = _inlet(lsl_name, 3)
    try:
        head = _ready(proc)
        assert head["type"] == MARKER_STREAM_TYPE and head["channels"] == 1
        assert outlet.wait_for_consumers(10.0)
        from acquisition.sources.base import local_clock

        t0 = local_clock()
        for k, text in enumerate(["session_start", "stim_on:x", "label:happy"]):
            outlet.push(text, t0 + k)
        got = _result(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        outlet.close()
    assert [text for text, _ in got] == ["session_start", "stim_on:x", "label:happy"]
    assert np.allclose([t for _, t in got], [t0, t0 + 1, t0 + 2], atol=1e-3)  # our timestamps, not arrival


@pytest.mark.timeout(60)
def test_session_markers_are_published_and_stored(lsl_name: str, tmp_path: Path) -> None:
    from acquisition.session.protocol import parse_protocol
    from acquisition.session.runner import SessionRunner
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.sqlite import SessionStore

    sfreq = 8000
    sf.write(str(tmp_path / "a.wav"), np.zeros(sfreq * 2, np.float32), sfreq)
    protocol = parse_protocol(
        "[protocol]\nmusic_s = 1\nsilence_s = 0.2\nbaseline_s = 0.2\n"
        '[[stimuli]]\nid = "s1"\npath = "a.wav"\ngenre = "g"\nemotion = "sad"\n'
        '[[stimuli]]\nid = "s2"\npath = "a.wav"\ngenre = "g"\nemotion = "tense"\n', base_dir=tmp_path)
    expected = ["session_start", "baseline_start", "baseline_end", "stim_on:s1", "stim_off:s1", "label:sad",
                "stim_on:s2", "stim_off:s2", "label:tense", "session_end"]
    outlet = MarkerOutlet(lsl_name)
    proc = _inlet(lsl_name, len(expected))
    store = SessionStore(tmp_path / "store.sqlite")
    try:
        _ready(proc)
        assert outlet.wait_for_consumers(10.0)
        with SimulatedEpocSource(seed=3, speed=4) as source:
            result = SessionRunner(protocol, source, store, "P07", markers=outlet, time_scale=4).run()
        got = _result(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        outlet.close()
    assert [text for text, _ in got] == expected
    stored = [(m.text, m.t) for m in store.markers(result.session_id)]
    assert sorted(text for text, _ in stored) == sorted(expected)
    by_text = dict(stored)
    for text, t in got:  # the same times on both sides (EEG clock)
        assert abs(by_text[text] - t) < 1e-3, text
    store.close()
