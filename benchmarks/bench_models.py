"""Models benchmarks: one live update, and the full ``paper`` protocol on 16 trials.

* live update: the ring buffer holds a stream; each update reads the new 0.25 s hop,
  runs the causal filter and the features of the 4 s window, and predicts the class
  probabilities (LivePredictor.step). The p99 over many updates, in ms.
* paper protocol: the simulated headset, 4 states x 4 trials x 30 s, ``default``
  features, the paper's four classifiers with their inner grid searches, 5-fold CV +
  70/30 + 80/20, no permutations; wall-clock seconds on one core.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _trials(n_per_state: int, trial_s: float, seed: int = 0) -> list[Any]:
    from acquisition.channels import SFREQ_HZ
    from acquisition.sources.simulated import EpocSimulator
    from acquisition.store.sqlite import LabelledTrial

    sim = EpocSimulator(seed=seed)
    out = []
    states = ("happy", "sad", "relaxing", "tense")
    for k in range(n_per_state * len(states)):
        sim.set_state(states[k % len(states)])
        data = sim.generate(int(trial_s * SFREQ_HZ))
        sim.set_state("neutral")
        sim.generate(int(10 * SFREQ_HZ))
        out.append(LabelledTrial(data=data, label=states[k % len(states)], trial_id=f"b:{k}",
                                 subject="bench", sfreq_hz=SFREQ_HZ))
    return out


def bench_live_update(n_updates: int, classifier: str = "lda") -> dict[str, Any]:
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from models.bundle import train_bundle
    from models.datasets import from_trials
    from models.live import LivePredictor

    bundle = train_bundle(from_trials(_trials(2, 16.0), "default"), classifier)
    source = SimulatedEpocSource(seed=1, buffer_seconds=60.0)  # not connected: the benchmark feeds it
    sim = EpocSimulator(seed=1)
    hop = 32
    warm = sim.generate(6 * 128)
    source.buffer.push(warm, np.arange(len(warm)) / 128.0)
    t_next = len(warm) / 128.0
    predictor = LivePredictor(bundle, source, hop_s=hop / 128.0)
    predictor.step()
    chunks = [sim.generate(hop) for _ in range(n_updates)]
    times_ms = np.empty(n_updates)
    for i, chunk in enumerate(chunks):
        source.buffer.push(chunk, t_next + np.arange(hop) / 128.0)
        t_next += hop / 128.0
        t0 = time.perf_counter()
        pred = predictor.step()
        times_ms[i] = (time.perf_counter() - t0) * 1000.0
        assert pred is not None
    return {"p99": float(np.percentile(times_ms, 99)), "median": float(np.median(times_ms)), "classifier": classifier}


def bench_paper_protocol(n_per_state: int) -> float:
    from models.datasets import from_trials
    from models.evaluation import run_evaluation

    trials = _trials(n_per_state, 30.0)
    t0 = time.perf_counter()
    ds = from_trials(trials, "default")
    run_evaluation(ds, "paper", None, n_permutations=0, n_jobs=1)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows (see the module docstring)."""
    live = bench_live_update(100 if quick else 1000)
    svm = bench_live_update(50 if quick else 300, "svm-rbf")
    n_per_state = 1 if quick else 4
    paper_s = bench_paper_protocol(n_per_state)
    return [
        {"name": f"live update p99 (4 s window, default preset, {live['classifier']})", "value": live["p99"],
         "unit": "ms", "target": "<= 5 ms", "ok": live["p99"] <= 5.0},
        {"name": f"live update median ({live['classifier']})", "value": live["median"], "unit": "ms",
         "target": None, "ok": None},
        {"name": "live update p99 (calibrated svm-rbf)", "value": svm["p99"], "unit": "ms",
         "target": None, "ok": None},
        {"name": f"paper protocol, {4 * n_per_state} simulated 30 s trials, paper's 4 classifiers",
         "value": paper_s, "unit": "s", "target": None, "ok": None},
    ]
