"""duygu evaluate / train / predict end to end (in-process CLI), with bad inputs."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import pytest

from acquisition.store.sqlite import SessionStore
from app.cli import main
from tests.support.models_data import (
    synthetic_dataset,
    write_deap_file,
    write_feature_csv,
    write_store,
)

KEYS = ["classifier", "split", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "confusion"]


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("duygu: error: ") and "\n" not in err, err
    return err


@pytest.fixture
def table(tmp_path: Path) -> Path:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=6, effect=2.0, trial_offset=0.3)
    return write_feature_csv(tmp_path / "features.csv", ds, extra={"note": ["x"] * ds.n_rows})


def test_evaluate_features_json_and_report(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "r.json", tmp_path / "r.html"
    assert main(["evaluate", "--features", str(table), "--label", "label", "--group", "trial", "--drop", "note",
                 "--protocol", "grouped", "--classifiers", "lda,knn", "--permutations", "4",
                 "--json", str(out), "--report", str(report)]) == 0
    cap = capsys.readouterr()
    printed = cap.out
    assert "Accuracy %" in printed and "Precision %" in printed and "Recall %" in printed and "F1 %" in printed
    assert "leakage gap" in printed and "p = " in printed
    assert "duygu: warning: inner CV falls back to row folds in 2 of 4 outer folds" in cap.err
    result = json.loads(out.read_text())
    assert list(result)[:4] == ["protocol", "chance", "results", "leakage_gap"]  # the keys scripts rely on
    assert result["dataset"]["windows_lost_to_gaps"] == 0 and "trials_with_bad_contact" in result["dataset"]
    assert result["main_split"] == "grouped"
    perm = result["permutation"]
    assert perm["reference"] == "lda" and perm["n_permutations"] == 4 and perm["scheme"] == "whole trials"
    assert set(perm["p_values"]) == {"lda"} and 0 < perm["p_values"]["lda"] <= 1
    # 2 trials per class: a grouped fold trains on 1 per class, too few for a grouped inner CV
    assert result["inner_cv"]["grouped"] is False and result["inner_cv"]["ungrouped_folds"] == 2
    assert "a grouped inner CV needs >= 2 per class" in result["inner_cv"]["reason"]
    assert result["protocol"] == "grouped" and isinstance(result["chance"], float)
    assert isinstance(result["leakage_gap"], float)
    assert [(r["classifier"], r["split"]) for r in result["results"]] == [
        ("lda", "grouped"), ("lda", "random"), ("knn", "grouped"), ("knn", "random")]
    assert all(list(r) == KEYS for r in result["results"])
    html = report.read_text()
    assert html.count("<svg") >= 5 and "permutation p" in html and "knn / random" in html


def test_evaluate_deap_paper_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for k in range(2):
        write_deap_file(tmp_path / f"s0{k + 1}.dat", n_trials=8, n_samples=384 + 12 * 128, seed=k)
    assert main(["evaluate", "--deap", str(tmp_path), "--protocol", "paper", "--classifiers", "lda",
                 "--permutations", "0", "--json", "-"]) == 0
    cap = capsys.readouterr()
    result = json.loads(cap.out)
    assert [r["split"] for r in result["results"]] == ["cv5", "70/30", "80/20"]
    assert "5-fold CV" in cap.err  # the table goes to stderr when the JSON takes stdout


def test_evaluate_bad_inputs(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["evaluate", "--features", str(table), "--permutations", "0"]
    assert "feature column 'trial' must be numeric, got 't00'" in _error(capsys, [*base, "--label", "label"])
    assert "feature column 'note' must be numeric" in _error(capsys, [*base, "--label", "label", "--group", "trial"])
    assert "label column 'mood' is not in" in _error(capsys, [*base, "--label", "mood"])
    assert "needs --label" in _error(capsys, base)
    assert "classifier must be one of" in _error(
        capsys, [*base, "--label", "label", "--drop", "note", "--classifiers", "lda,deepnet"])
    assert "needs groups" in _error(capsys, [*base, "--label", "label", "--drop", "note,trial", "--protocol", "grouped"])
    assert "DEAP directory" in _error(capsys, ["evaluate", "--deap", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit):
        main(["evaluate", "--features", str(table), "--label", "label", "--protocol", "random"])


@pytest.mark.timeout(60)
def test_evaluate_warns_about_trials_recorded_with_bad_contact(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store = write_store(tmp_path / "lab.sqlite", n_per_state=2, trial_s=12.0, bad_contact={1: ["O1"], 6: ["T7", "P8"]})
    with SessionStore(store, readonly=True) as s:
        ids = [t.trial_id for t in s.labelled_trials() if t.bad_contact]
    assert len(ids) == 2
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    assert main(["evaluate", "--store", str(store), "--protocol", "grouped", "--classifiers", "lda",
                 "--permutations", "0", "--json", str(out), "--report", str(html)]) == 0
    message = (f"2 trial(s) recorded with bad contact (ids {', '.join(ids)}): some electrodes were off the skin "
               f"or poorly connected, so their windows may hold noise")
    assert f"duygu: warning: {message}" in capsys.readouterr().err.splitlines()
    dataset = json.loads(out.read_text())["dataset"]
    assert dataset["trials_with_bad_contact"] == 2 and dataset["bad_contact_trials"] == ids
    assert f"<li>{html_escape(message)}</li>" in html.read_text()
    # a clean store warns about nothing
    clean = write_store(tmp_path / "clean.sqlite", n_per_state=2, trial_s=12.0)
    assert main(["evaluate", "--store", str(clean), "--protocol", "grouped", "--classifiers", "lda",
                 "--permutations", "0"]) == 0
    assert "bad contact" not in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_train_from_store_then_predict_live(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = write_store(tmp_path / "lab.sqlite", n_per_state=2, trial_s=12.0)
    model = tmp_path / "model.skops"
    meta_json = tmp_path / "meta.json"
    assert main(["train", "--store", str(store), "--participants", "P01", "--classifier", "lda",
                 "--out", str(model), "--json", str(meta_json)]) == 0
    printed = capsys.readouterr().out
    assert "grouped k-fold" in printed and f"to {model}" in printed
    meta = json.loads(meta_json.read_text())
    assert meta["protocol"] == "grouped" and meta["metrics"]["results"][0]["split"] == "grouped"
    assert meta["channels"][0] == "AF3" and meta["sfreq_hz"] == 128.0 and meta["preset"] == "default"
    assert sorted(meta["classes"]) == ["happy", "relaxing", "sad", "tense"]

    lines_path = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", str(model), "--source", "simulated:4", "--seconds", "5",
                 "--sim-state", "sad", "--jsonl", str(lines_path)]) == 0
    lines = [json.loads(line) for line in lines_path.read_text().splitlines()]
    assert len(lines) >= 2
    for line in lines:
        assert list(line) == ["t", "probabilities", "label", "latency_ms", "clean", "reason"]
        assert sum(line["probabilities"].values()) == pytest.approx(1.0)
        assert line["label"] in line["probabilities"]
    assert "not clean) from simulated:4" in capsys.readouterr().err

    # the predictor fails mid-run: one line, and the predictions made before it are kept
    from models.live import LivePredictor

    real_step, made = LivePredictor.step, []

    def failing_step(self: LivePredictor) -> object:
        prediction = real_step(self)
        if prediction is not None:
            made.append(prediction)
            if len(made) > 2:
                raise ValueError("the model broke")
        return prediction

    monkeypatch.setattr(LivePredictor, "step", failing_step)
    broken = tmp_path / "broken.jsonl"
    assert main(["predict", "--model", str(model), "--source", "simulated:4", "--seconds", "5", "--hop", "0.25",
                 "--jsonl", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "duygu: error: live prediction stopped: ValueError: the model broke"
    assert len(broken.read_text().splitlines()) == 2
    monkeypatch.undo()

    assert "no labelled trial of participants P99" in _error(
        capsys, ["train", "--store", str(store), "--participants", "P99", "--out", str(tmp_path / "p99.skops")])


@pytest.mark.timeout(60)
def test_a_deap_trained_model_warns_on_a_live_epoc_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from models.bundle import load_bundle
    from models.datasets import DOMAIN_DEAP, DOMAIN_EPOC

    for k in range(2):
        write_deap_file(tmp_path / f"s0{k + 1}.dat", n_trials=8, n_samples=384 + 12 * 128, seed=k)
    model = tmp_path / "deap.skops"
    assert main(["train", "--deap", str(tmp_path), "--classifier", "lda", "--protocol", "none",
                 "--out", str(model)]) == 0
    assert load_bundle(model).meta["domain"] == DOMAIN_DEAP == "deap-preprocessed"
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--source", "simulated", "--seconds", "1",
                 "--jsonl", str(tmp_path / "p.jsonl")]) == 0
    warning = ("duygu: warning: this model was trained on DEAP's preprocessed EEG (4-45 Hz band-pass, average "
               "reference, EOG removed); the live EPOC+ source is raw: the domains differ and its accuracy will "
               "not transfer")
    assert warning in capsys.readouterr().err.splitlines()
    # a model of raw EPOC+ trials is not warned about
    epoc = tmp_path / "epoc.skops"
    store = write_store(tmp_path / "lab.sqlite", n_per_state=2, trial_s=12.0)
    assert main(["train", "--store", str(store), "--classifier", "lda", "--protocol", "none", "--out", str(epoc)]) == 0
    assert load_bundle(epoc).meta["domain"] == DOMAIN_EPOC
    capsys.readouterr()
    assert main(["predict", "--model", str(epoc), "--source", "simulated", "--seconds", "1",
                 "--jsonl", str(tmp_path / "q.jsonl")]) == 0
    assert "domains differ" not in capsys.readouterr().err


def test_predict_refuses_bad_models(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "table.skops"
    assert main(["train", "--features", str(table), "--label", "label", "--group", "trial", "--drop", "note",
                 "--protocol", "none", "--out", str(model)]) == 0
    capsys.readouterr()
    assert "trained on a feature table" in _error(
        capsys, ["predict", "--model", str(model), "--source", "simulated", "--seconds", "1"])
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"PK\x03\x04 definitely not a model")
    assert "skops" in _error(capsys, ["predict", "--model", str(junk), "--source", "simulated", "--seconds", "1"])
    assert "classifier must be one of" in _error(
        capsys, ["train", "--features", str(table), "--label", "label", "--group", "trial", "--drop", "note",
                 "--classifier", "gpt", "--out", str(tmp_path / "gpt.skops")])
