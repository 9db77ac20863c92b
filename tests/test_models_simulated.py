"""Must hold: on the simulated participant, grouped evaluation recovers the state well above
chance and well below perfect, a random split of windows scores visibly higher (trials
leak), and shuffled labels do not."""

from __future__ import annotations

import pytest

from acquisition.store.sqlite import LabelledTrial
from models.datasets import Dataset, from_trials
from models.evaluation import run_evaluation
from tests.support.models_data import shuffled_trial_labels, simulated_trials


@pytest.fixture(scope="module")
def trials() -> list[LabelledTrial]:
    return simulated_trials(n_per_state=4, trial_s=30.0)  # 4 states x 4 trials x 30 s


@pytest.fixture(scope="module")
def dataset(trials: list[LabelledTrial]) -> Dataset:
    return from_trials(trials, "default")


@pytest.mark.timeout(180)
def test_grouped_recovers_the_simulated_state(dataset: Dataset) -> None:
    assert dataset.groups is not None and len(set(dataset.groups.tolist())) == 16
    report = run_evaluation(dataset, "grouped", ["lda", "logreg"], n_permutations=9, random_state=0)
    for name in ("lda", "logreg"):
        assert 0.55 <= report.row(name, "grouped")["accuracy"] <= 0.97
        assert report.row(name, "grouped")["balanced_accuracy"] >= 0.55
        assert report.row(name, "random")["accuracy"] >= report.row(name, "grouped")["accuracy"] + 0.05
    assert report.chance < 0.4
    assert report.p_value == pytest.approx(0.1)  # the best a 9-permutation test can give
    assert report.leakage_gap is not None and report.leakage_gap >= 0.05  # the per-trial offsets leak


@pytest.mark.timeout(180)
def test_shuffled_labels_are_at_chance(trials: list[LabelledTrial]) -> None:
    shuffled = from_trials(shuffled_trial_labels(trials, seed=0), "default")
    report = run_evaluation(shuffled, "grouped", ["lda"], n_permutations=19, random_state=0)
    assert report.p_value is not None and report.p_value > 0.05
    assert report.row("lda", "grouped")["accuracy"] < 0.45
    assert 0.15 < report.chance < 0.35
    # the random k-fold of the same windows still "finds" a pattern: trials leak
    assert report.leakage_gap is not None and report.leakage_gap > 0.1


@pytest.mark.timeout(180)
def test_paper_protocol_on_the_simulated_trials(dataset: Dataset) -> None:
    report = run_evaluation(dataset, "paper", ["knn"], n_permutations=0)
    assert [r["split"] for r in report.results] == ["cv5", "70/30", "80/20"]
    assert all(r["accuracy"] > 0.8 for r in report.results)  # the paper's row-wise splits leak: high
