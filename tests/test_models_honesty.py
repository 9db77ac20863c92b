"""Must hold (issue 11): grouped all the way down, a chance level to trust, honest
probabilities, fusion that keeps stimuli apart, choices made on the main split only."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import models.evaluation as engine
import models.registry as registry
from app.cli import main
from models.datasets import Dataset
from models.evaluation import Learner, best_main_row, make_folds, permute_labels, run_evaluation
from models.synthetic import emotion_table


def _write_table(path: Path, ds: Dataset, with_group: bool = False) -> Path:
    """``ds`` as a CSV with a ``subject`` column (and ``trial`` if asked), no group column otherwise."""
    assert ds.subjects is not None and ds.groups is not None
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*ds.feature_names, "emotion", "subject", *(["trial"] if with_group else [])])
        for i in range(ds.n_rows):
            w.writerow([*(f"{v:.6g}" for v in ds.X[i]), ds.y[i], ds.subjects[i],
                        *([ds.groups[i]] if with_group else [])])
    return path


def _spy_inner_folds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, list[Any]]]:
    """Record the groups and folds of every inner CV the engine builds."""
    seen: list[tuple[np.ndarray, list[Any]]] = []
    real = registry.inner_folds

    def spy(y: Any, groups: Any, *args: Any, **kwargs: Any) -> Any:
        folds, info = real(y, groups, *args, **kwargs)
        seen.append((np.asarray(groups), folds))
        return folds, info

    monkeypatch.setattr(registry, "inner_folds", spy)
    return seen


# -- 1. grouped all the way down ------------------------------------------------------------
@pytest.mark.timeout(120)
def test_loso_inner_cv_is_grouped_by_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = emotion_table(n_subjects=6, trials_per_class=2, windows_per_trial=(3,), n_features=8, effect=0.8)
    assert ds.subjects is not None
    seen = _spy_inner_folds(monkeypatch)
    report = run_evaluation(ds, "loso", ["svm-rbf"], n_permutations=0)
    assert len(seen) == 6  # one inner search (and calibration) per outer fold
    subject_ids = set(ds.subjects.tolist())
    for groups, folds in seen:
        assert set(groups.tolist()) <= subject_ids and len(set(groups.tolist())) == 5  # the training subjects
        for train, test in folds:
            assert not set(groups[train].tolist()) & set(groups[test].tolist())  # no subject on both sides
    assert report.inner_cv == {"grouped": True, "by": "subject", "folds": 6, "n_splits": [3]}
    assert report.warnings == []
    assert report.as_full_json()["inner_cv"]["by"] == "subject"


@pytest.mark.timeout(60)
def test_a_table_without_groups_is_grouped_by_subject_and_a_fallback_is_recorded() -> None:
    ds = emotion_table(n_subjects=4, trials_per_class=2, windows_per_trial=(3,), n_features=6, effect=0.8)
    no_groups = Dataset(ds.X, ds.y, None, ds.subjects, ds.feature_names, dict(ds.meta))
    report = run_evaluation(no_groups, "paper", ["knn"], n_permutations=0)
    assert report.inner_cv["grouped"] and report.inner_cv["by"] == "subject"
    two = emotion_table(n_subjects=2, trials_per_class=2, windows_per_trial=(3,), n_features=6, effect=0.8)
    report = run_evaluation(two, "loso", ["knn"], n_permutations=0)  # 1 training subject per fold
    inner = report.as_full_json()["inner_cv"]
    assert inner["grouped"] is False and inner["by"] == "rows" and inner["ungrouped_folds"] == 2
    assert "class 'happy' has 1 subject in the training rows" in inner["reason"]
    assert len(report.warnings) == 1 and "falls back to row folds in 2 of 2 outer folds" in report.warnings[0]


@pytest.mark.timeout(60)
def test_train_warns_when_the_final_fits_inner_cv_falls_back_to_rows(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ds = emotion_table(n_subjects=3, trials_per_class=2, windows_per_trial=(3,), n_features=6, effect=0.8)
    table = _write_table(tmp_path / "small_nogroup.csv", ds)
    base = ["train", "--features", str(table), "--label", "emotion", "--classifier", "svm-rbf", "--protocol", "none"]
    assert main([*base, "--drop", "subject", "--out", str(tmp_path / "rows.skops"),  # no groups at all
                 "--json", str(tmp_path / "rows.json")]) == 0
    err = capsys.readouterr().err
    inner = json.loads((tmp_path / "rows.json").read_text())["inner_cv"]
    assert inner["grouped"] is False and inner["by"] == "rows"
    warnings = [line for line in err.splitlines() if line.startswith("duygu: warning: ")]
    assert warnings == [f"duygu: warning: the final fit's inner CV (hyper-parameter search, calibration) falls "
                        f"back to row folds: {inner['reason']}"]
    assert main([*base, "--subject", "subject", "--out", str(tmp_path / "subject.skops"),  # grouped
                 "--json", str(tmp_path / "subject.json")]) == 0
    assert json.loads((tmp_path / "subject.json").read_text())["inner_cv"]["by"] == "subject"
    assert "duygu: warning" not in capsys.readouterr().err


# -- honest probabilities -------------------------------------------------------------------
def _calibration_gap(ds: Dataset, grouped: bool) -> tuple[float, float]:
    """Mean max probability and accuracy of the calibrated RBF SVM over grouped outer folds."""
    learner = Learner(ds.X)
    assert ds.groups is not None
    folds = make_folds(engine.get_protocol("grouped").splits[0], ds, ds.y, 0)
    top, hit = [], []
    for train, test in folds:
        proba, _ = learner.fit_predict_proba("svm-rbf", 0, ds.y, train, test, ds.groups if grouped else None,
                                             ds.classes)
        top.append(proba.max(axis=1))
        hit.append(np.asarray(ds.classes)[np.argmax(proba, axis=1)] == ds.y[test])
    return float(np.concatenate(top).mean()), float(np.concatenate(hit).mean())


@pytest.mark.timeout(120)
def test_grouped_calibration_is_honest_on_a_weak_signal() -> None:
    # weak emotion effect, strong trial offsets, overlapping windows: row-wise calibration
    # folds see windows of the test trials and turn recognised trials into confidence
    ds = emotion_table(n_subjects=4, trials_per_class=4, windows_per_trial=(6,), n_features=12, effect=0.15,
                       trial_sd=1.0, subject_sd=0.3, seed=3)
    confidence, accuracy = _calibration_gap(ds, grouped=True)
    assert accuracy < 0.45  # weak indeed (chance 0.25)
    assert abs(confidence - accuracy) < 0.1
    leaky_confidence, leaky_accuracy = _calibration_gap(ds, grouped=False)
    assert leaky_confidence - leaky_accuracy > 0.2  # the fixture is hard enough to catch row-wise calibration


# -- 2. a chance level to trust -------------------------------------------------------------
def test_loso_permutations_keep_each_subjects_class_counts() -> None:
    ds = emotion_table(n_subjects=5, trials_per_class=3, windows_per_trial=(4,), n_features=4)
    assert ds.subjects is not None and ds.groups is not None
    rng = np.random.default_rng(0)
    for _ in range(20):
        perm = permute_labels(ds.y, ds.groups, rng, within=ds.subjects)
        for s in np.unique(ds.subjects):
            mine = ds.subjects == s
            assert Counter(perm[mine].tolist()) == Counter(ds.y[mine].tolist())
        for g in np.unique(ds.groups):
            assert len(set(perm[ds.groups == g].tolist())) == 1  # whole trials keep one label
    assert (perm != ds.y).any()
    # the old null permuted across subjects: some subject's counts change
    across = permute_labels(ds.y, ds.groups, np.random.default_rng(0))
    assert any(Counter(across[ds.subjects == s].tolist()) != Counter(ds.y[ds.subjects == s].tolist())
               for s in np.unique(ds.subjects))


@pytest.mark.timeout(60)
def test_the_reference_is_the_protocols_and_the_json_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = emotion_table(n_subjects=3, trials_per_class=2, windows_per_trial=(3,), n_features=6, effect=1.0)
    calls: list[Any] = []
    real = engine.permute_labels

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[3] if len(args) > 3 else kwargs.get("within"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "permute_labels", spy)
    report = run_evaluation(ds, "loso", ["knn"], n_permutations=9)  # lda is not listed, and is the reference
    assert len(calls) == 9 and all(c is not None and (c == ds.subjects).all() for c in calls)
    perm = report.as_full_json()["permutation"]
    assert perm["reference"] == "lda" and perm["n_permutations"] == 9 and perm["split"] == "loso"
    assert perm["scheme"] == "whole trials within subject" and set(perm["p_values"]) == {"lda"}
    assert report.reference == ("lda", "loso") and [r["classifier"] for r in report.results] == ["knn"]
    both = run_evaluation(ds, "loso", ["lda"], n_permutations=4, permutation_reference="knn",
                          permutations_for="all")
    assert both.permutation["reference"] == "knn" and set(both.permutation["p_values"]) == {"knn", "lda"}
    assert both.chance == pytest.approx(both.permutation["null_mean"]["knn"])
    with pytest.raises(engine.DataError, match="permutations_for must be one of reference, all, got 'some'"):
        run_evaluation(ds, "loso", ["knn"], n_permutations=2, permutations_for="some")


# -- 5. auto --------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_auto_chooses_by_inner_cv_and_reports_it() -> None:
    ds = emotion_table(n_subjects=4, trials_per_class=2, windows_per_trial=(3,), n_features=8, effect=1.0)
    report = run_evaluation(ds, "loso", ["auto"], n_permutations=0)
    auto = report.as_full_json()["auto"]
    assert auto["split"] == "loso" and sum(auto["chosen"].values()) == 4
    assert set(auto["chosen"]) <= set(registry.AUTO_CANDIDATES)
    chosen = report.chosen_params["auto | loso"]
    assert all(c["classifier"] in registry.AUTO_CANDIDATES for c in chosen)
    assert report.row("auto", "loso")["accuracy"] > 0.6


@pytest.mark.timeout(120)
def test_ann_defaults_are_at_least_plain_mlp() -> None:
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = emotion_table(n_subjects=4, trials_per_class=2, windows_per_trial=(4,), n_features=16, effect=0.5)
    correct = 0
    for train, test in LeaveOneGroupOut().split(ds.X, ds.y, ds.subjects):
        plain = make_pipeline(StandardScaler(), MLPClassifier(random_state=0)).fit(ds.X[train], ds.y[train])
        correct += int((plain.predict(ds.X[test]) == ds.y[test]).sum())
    duygu = run_evaluation(ds, "loso", ["ann"], n_permutations=0).row("ann", "loso")["accuracy"]
    assert duygu >= correct / ds.n_rows - 1e-9


# -- 7. fusion keeps stimuli apart ----------------------------------------------------------
def _fused_noise(n_subjects: int = 6, stimuli_per_class: int = 6, rows_per_trial: int = 3,
                 seed: int = 0) -> tuple[Dataset, Dataset]:
    """Pure-noise EEG fused with a random vector per stimulus; every subject hears every
    stimulus and reports its intended emotion. Returns (fused by stimulus, fused by trial)."""
    from models.fusion import fuse_music

    rng = np.random.default_rng(seed)
    classes = ("happy", "sad", "relaxing", "tense")
    stimuli = [(f"stim{k:02d}", classes[k % 4]) for k in range(4 * stimuli_per_class)]
    music = {sid: rng.normal(size=63) for sid, _ in stimuli}
    X, y, g, s = [], [], [], []
    for subj in range(n_subjects):
        for sid, label in stimuli:
            X.append(rng.normal(size=(rows_per_trial, 10)))
            y += [label] * rows_per_trial
            g += [f"P{subj}:{sid}"] * rows_per_trial
            s += [f"P{subj}"] * rows_per_trial
    eeg = Dataset(np.concatenate(X), np.array(y), np.array(g), np.array(s), [f"e{i}" for i in range(10)],
                  {"source": "synthetic", "domain": "epoc-raw"})
    summaries = {trial: music[trial.split(":")[1]] for trial in set(g)}
    by_stimulus = fuse_music(eeg, summaries, {trial: trial.split(":")[1] for trial in set(g)})
    by_trial = Dataset(by_stimulus.X, by_stimulus.y, by_stimulus.groups, by_stimulus.subjects,
                       by_stimulus.feature_names, by_stimulus.meta)
    return by_stimulus, by_trial


@pytest.mark.timeout(120)
def test_fuse_music_with_random_stimulus_vectors_and_noise_eeg_stays_near_chance() -> None:
    fused, leaky = _fused_noise()
    assert fused.stimuli is not None
    for protocol in ("grouped", "loso"):
        report = run_evaluation(fused, protocol, ["lda"], n_permutations=0)
        assert report.row("lda", protocol)["accuracy"] < 0.4, protocol  # chance is 0.25
        assert report.as_full_json()["fusion"] == {"kind": "eeg+music", "grouped_by": "stimulus", "stimuli": 24}
        for train, test in make_folds(engine.get_protocol(protocol).splits[0], fused, fused.y, 0):
            assert not set(fused.stimuli[train].tolist()) & set(fused.stimuli[test].tolist())
    # grouped by trial (the old design), the music columns name the stimulus: the fixture leaks
    assert run_evaluation(leaky, "grouped", ["lda"]).row("lda", "grouped")["accuracy"] > 0.9


@pytest.mark.timeout(60)
def test_loso_with_fused_music_keeps_subjects_and_stimuli_apart_in_the_inner_cv(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fused, _ = _fused_noise(n_subjects=4, stimuli_per_class=3)
    assert fused.subjects is not None and fused.stimuli is not None
    seen = _spy_inner_folds(monkeypatch)
    report = run_evaluation(fused, "loso", ["svm-rbf"], n_permutations=0)
    assert len(seen) == 12  # 4 subjects x 3 stimulus folds, one inner search each
    for groups, folds in seen:
        assert groups.shape[1] == 2 and len(folds) >= 4
        for train, test in folds:
            assert len(train) and len(test)
            assert not set(groups[train, 0].tolist()) & set(groups[test, 0].tolist())  # no subject on both sides
            assert not set(groups[train, 1].tolist()) & set(groups[test, 1].tolist())  # no stimulus on both sides
        tested = np.concatenate([test for _, test in folds])
        assert sorted(tested.tolist()) == list(range(len(groups)))  # every row tested once (calibration)
    assert report.inner_cv == {"grouped": True, "by": "subject×stimulus", "folds": 12, "n_splits": [6]}
    assert report.warnings == []


def test_crossed_inner_folds_fall_back_to_the_grouping_that_is_possible() -> None:
    y = np.array(["a", "b"] * 12)
    crossed = np.empty((24, 2), dtype=object)
    crossed[:, 0] = "P0"  # one subject: it cannot be kept apart
    crossed[:, 1] = [f"s{i % 8}" for i in range(24)]
    folds, info = registry.inner_folds(y, crossed, by="subject×stimulus")
    assert not info.grouped and info.by == "stimulus"
    assert info.reason == ("class 'a' has 1 subject in the training rows; a grouped inner CV needs >= 2 per "
                           "class; only stimulus kept apart")
    for train, test in folds:
        assert not set(crossed[train, 1].tolist()) & set(crossed[test, 1].tolist())
    crossed[:, 1] = "s0"
    _, info = registry.inner_folds(y, crossed, by="subject×stimulus")
    assert not info.grouped and info.by == "rows"


# -- 6. choices on the main split only ------------------------------------------------------
def test_choices_never_come_from_a_random_row() -> None:
    result = {"protocol": "grouped", "main_split": "grouped", "chance": 0.25, "leakage_gap": 0.4, "results": [
        {"classifier": "knn", "split": "grouped", "balanced_accuracy": 0.40},
        {"classifier": "knn", "split": "random", "balanced_accuracy": 0.99},
        {"classifier": "lda", "split": "grouped", "balanced_accuracy": 0.55},
        {"classifier": "lda", "split": "random", "balanced_accuracy": 0.80}]}
    assert best_main_row(result)["classifier"] == "lda"


@pytest.mark.timeout(60)
def test_gui_never_highlights_a_random_row(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from acquisition.settings import load_settings
    from app.notifications import NotificationCenter
    from app.state import AppState
    from app.views.training import DEFAULT_CLASSIFIERS, TrainingView
    from app.workers import WorkerPool

    notes = NotificationCenter()
    pool = WorkerPool(notify=notes.notify)
    state = AppState(load_settings(), tmp_path / "store.sqlite", tmp_path / "a.toml", pool, notes)
    view = TrainingView(state)
    qtbot.addWidget(view)
    assert DEFAULT_CLASSIFIERS == ("auto",) and view.permutations.value() == 200
    ds = emotion_table(n_subjects=2, trials_per_class=2, windows_per_trial=(3,), n_features=6, effect=0.3,
                       trial_sd=2.0, seed=1)
    result = run_evaluation(ds, "grouped", ["lda", "knn"], n_permutations=0).as_full_json()
    best_random = max(range(len(result["results"])), key=lambda i: result["results"][i]["balanced_accuracy"])
    assert result["results"][best_random]["split"] == "random"  # the leaky split wins on these windows
    view.show_result(result)
    bold = [i for i in range(view.table.rowCount()) if view.table.item(i, 0).font().bold()]
    assert bold == [view.best_index] and result["results"][view.best_index]["split"] == "grouped"
    assert result["results"][view.best_index] == best_main_row(result)
    assert view.table.selectionModel().selectedRows()[0].row() == view.best_index
    pool.shutdown(timeout_ms=10000)


# -- the researcher's command ---------------------------------------------------------------
@pytest.mark.timeout(240)
def test_cli_loso_of_the_paper_classifiers_with_100_permutations(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's command on a small table of the real shape's structure (the full
    3,248-row table's time is in docs/EVALUATION.md)."""
    ds = emotion_table(n_subjects=6, trials_per_class=2, windows_per_trial=(4, 3), n_features=12, effect=0.8)
    table = _write_table(tmp_path / "t.csv", ds)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--features", str(table), "--label", "emotion", "--subject", "subject",
                 "--protocol", "loso", "--classifiers", "ann,svm-poly,svm-rbf,knn", "--permutations", "100",
                 "--jobs", "2", "--json", str(out)]) == 0
    cap = capsys.readouterr()
    result = json.loads(out.read_text())
    perm = result["permutation"]
    assert perm["reference"] == "lda" and perm["n_permutations"] == 100 and perm["scheme"] == "rows within subject"
    assert perm["p_values"]["lda"] < 0.05 and "p = 0.0099" in cap.out
    assert result["inner_cv"] == {"grouped": True, "by": "subject", "folds": 6, "n_splits": [3]}
    assert [r["classifier"] for r in result["results"]] == ["ann", "svm-poly", "svm-rbf", "knn"]
    assert all(r["accuracy"] > 0.5 for r in result["results"])
    assert "evaluate loso: " in cap.err and "ETA" in cap.err  # progress lines (stderr is not a terminal)


# -- 4. stronger classifiers on raw windows ---------------------------------------------------
@pytest.mark.timeout(180)
def test_raw_window_classifiers_run_on_the_engine() -> None:
    from acquisition.errors import DataError
    from models.datasets import from_trials
    from tests.support.models_data import simulated_trials

    # a clear emotion effect: this checks the engine runs raw-window classifiers, not how
    # hard the default simulated participant is (8 short trials would sit near chance; these
    # 16 give riemann about 0.85)
    ds = from_trials(simulated_trials(n_per_state=4, trial_s=10.0, strength=2.0), "default", keep_windows=True)
    assert ds.windows is not None and ds.windows.shape == (ds.n_rows, 14, 512)
    report = run_evaluation(ds, "grouped", ["riemann", "eegnet"], n_permutations=0)
    assert report.row("riemann", "grouped")["accuracy"] > 0.5  # chance 0.25
    for r in report.results:
        assert np.asarray(r["confusion"]).sum() == ds.n_rows
    with pytest.raises(DataError, match="classifier 'riemann' reads raw EEG windows"):
        run_evaluation(Dataset(ds.X, ds.y, ds.groups, ds.subjects, ds.feature_names), "grouped", ["riemann"])


# -- 9. progress with an ETA --------------------------------------------------------------------
def test_progress_lines_with_eta_when_stderr_is_not_a_terminal() -> None:
    import io

    from app.progress import Eta, stderr_progress

    now = [0.0]
    out = io.StringIO()
    update, close = stderr_progress("evaluate loso", stream=out, every_s=5.0, tty=False, clock=lambda: now[0])
    for done in range(1, 101):
        now[0] = done * 0.5  # half a second per unit
        update(done, 100)
    close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 99 // 10 + 1  # the first, one every 5 s (10 units), the last
    assert lines[1] == "evaluate loso: 11/100 work units (11%), 6 s elapsed, ETA 44 s"
    assert lines[-1].startswith("evaluate loso: 100/100 work units (100%), 50 s elapsed, ETA 0 s")
    eta = Eta(clock=lambda: 90.0)
    eta.t0 = 0.0
    eta.update(30, 100)
    assert eta.remaining_s == pytest.approx(210.0) and eta.short() == "30/100 · ETA 3 min 30 s"
