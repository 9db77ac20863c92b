"""Music-emotion classifiers on the synthesised library: grouped CV, LSTM, CNN, model files."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.errors import DataError, ModelFormatError
from models import music
from models.cnn import CnnClassifier
from models.datasets import Dataset
from models.lstm import LstmClassifier
from tests.support.music_data import write_library

# the session fixtures music_library_dir / music_library, shared by the music test modules
pytest_plugins = ("tests.support.music_fixtures",)

EMOTIONS = ["happy", "relaxing", "sad", "tense"]
ROW_KEYS = {"classifier", "split", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc",
            "confusion", "roc_auc"}
FAST_LSTM = {"epochs": 60, "hidden_size": 24}
FAST_CNN = {"epochs": 20}


def test_library_rows_groups_and_sequences(music_library: Any) -> None:
    ds = music_library.dataset
    assert ds.classes == EMOTIONS
    assert len(music_library.files) == 16 and music_library.skipped == []
    assert ds.X.shape == (16 * 3, 64) and np.all(np.isfinite(ds.X))  # 12 s -> 3 segments of 6 s every 3 s
    assert len(np.unique(ds.groups)) == 16
    for g in np.unique(ds.groups):  # one label per file
        assert len(np.unique(ds.y[ds.groups == g])) == 1
    assert music_library.sequences.shape[:1] == (48,) and music_library.sequences.shape[2] == 32
    tempo = ds.X[:, ds.feature_names.index("tempo_estimate_bpm")]
    confidence = ds.X[:, ds.feature_names.index("tempo_confidence")]
    assert np.all((tempo >= 40.0) & (tempo <= 220.0)) and np.all((confidence >= 0.0) & (confidence < 1.0))
    by_class = {c: np.median(tempo[ds.y == c]) for c in EMOTIONS}
    assert by_class["tense"] > by_class["sad"] and by_class["happy"] > by_class["relaxing"]
    # the beat of the synthesised pieces (140 / 60 / 160 bpm) even in 6 s segments
    for emotion, bpm in (("happy", 140.0), ("sad", 60.0), ("tense", 160.0)):
        assert by_class[emotion] == pytest.approx(bpm, rel=0.08), (emotion, by_class[emotion])


@pytest.mark.timeout(240)
def test_grouped_cv_recovers_the_intended_emotions(music_library: Any) -> None:
    result = music.evaluate_library(music_library, "grouped", ["logreg", "lstm"], lstm_params=FAST_LSTM)
    assert set(result) == {"protocol", "chance", "results", "leakage_gap", "dataset"}
    assert result["protocol"] == "grouped" and result["chance"] == 0.25
    json.dumps(result, allow_nan=False)
    rows = {(r["classifier"], r["split"]): r for r in result["results"]}
    assert set(rows) == {(c, s) for c in ("logreg", "lstm") for s in ("grouped", "random")}
    for row in rows.values():
        assert set(row) == ROW_KEYS
        assert np.array(row["confusion"]).sum() == 48
    # far above chance (0.25) with no file on both sides of a split
    assert rows[("logreg", "grouped")]["accuracy"] >= 0.7
    assert rows[("logreg", "grouped")]["roc_auc"] >= 0.85
    assert rows[("lstm", "grouped")]["accuracy"] >= 0.6
    assert rows[("lstm", "grouped")]["mcc"] > 0.4


def test_shuffled_file_labels_stay_near_chance(music_library: Any) -> None:
    rng = np.random.default_rng(1)
    lib = music_library
    files = np.unique(lib.dataset.groups)
    shuffled = dict(zip(files, rng.permutation([lib.dataset.y[lib.dataset.groups == f][0] for f in files]), strict=True))
    ds = type(lib.dataset)(lib.dataset.X, np.array([shuffled[g] for g in lib.dataset.groups]), lib.dataset.groups,
                           lib.dataset.subjects, lib.dataset.feature_names, lib.dataset.meta)
    result = music.evaluate_library(music.MusicLibrary(ds, None, lib.files), "grouped", ["lda"])
    assert result["results"][0]["accuracy"] < 0.6


def test_permutation_chance_level(music_library: Any) -> None:
    result = music.evaluate_library(music_library, "grouped", ["lda"], n_permutations=5, random_state=2)
    assert 0.0 < result["chance"] < 0.5  # file labels permuted: about 1/4
    grouped = next(r for r in result["results"] if r["split"] == "grouped")
    assert grouped["accuracy"] > result["chance"] + 0.3


def test_music_evaluation_runs_on_the_shared_engine(music_library: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One engine: the music models' permutations, folds and leakage gap are those of
    models.evaluation (no copy of the protocol loop in models.music)."""
    import models.evaluation as engine

    calls = {"permute": 0, "units": 0}
    permute, unit = engine.permute_labels, engine._fit_predict

    def counting_permute(*args: Any, **kwargs: Any) -> Any:
        calls["permute"] += 1
        return permute(*args, **kwargs)

    def counting_unit(*args: Any, **kwargs: Any) -> Any:
        calls["units"] += 1
        return unit(*args, **kwargs)

    monkeypatch.setattr(engine, "permute_labels", counting_permute)
    monkeypatch.setattr(engine, "_fit_predict", counting_unit)
    result = music.evaluate_library(music_library, "grouped", ["lda"], n_permutations=3, random_state=2)
    n_folds = engine._n_group_folds(music_library.dataset)
    assert calls == {"permute": 3, "units": 2 * n_folds}  # grouped and random folds of lda
    assert result["leakage_gap"] == pytest.approx(
        next(r["accuracy"] for r in result["results"] if r["split"] == "random")
        - next(r["accuracy"] for r in result["results"] if r["split"] == "grouped"))
    for name in ("permute_labels", "make_folds", "compute_metrics"):
        assert not hasattr(music, name), f"models.music has its own {name}"


def test_lstm_trains_on_cpu_in_under_a_minute_and_round_trips(music_library: Any, music_library_dir: Path,
                                                                tmp_path: Path) -> None:
    t0 = time.perf_counter()
    model = music.train_music_model(music_library, "lstm", lstm_params=FAST_LSTM)
    assert time.perf_counter() - t0 < 60.0
    clf = model.estimator
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    path = tmp_path / "music.lstm"
    model.save(path)
    loaded = music.MusicModel.load(path)
    assert loaded.classifier == "lstm" and loaded.classes == EMOTIONS
    seqs = music_library.sequences[:5]
    np.testing.assert_allclose(loaded.estimator.predict_proba(seqs), clf.predict_proba(seqs), atol=1e-6)
    one = music_library_dir / "sad" / "organ.wav"
    proba = loaded.predict_file(one)
    assert set(proba) == set(EMOTIONS) and sum(proba.values()) == pytest.approx(1.0)


@pytest.mark.timeout(240)
def test_cnn_grouped_cv_recovers_the_intended_emotions(music_library: Any) -> None:
    """The CNN on log-mel patches, no file on both sides of a split, far above chance (0.25)."""
    result = music.evaluate_library(music_library, "grouped", ["cnn"], cnn_params=FAST_CNN)
    rows = {r["split"]: r for r in result["results"]}
    assert set(rows) == {"grouped", "random"} and set(rows["grouped"]) == ROW_KEYS
    assert np.array(rows["grouped"]["confusion"]).sum() == 48
    grouped = rows["grouped"]
    assert grouped["accuracy"] >= 0.6 and grouped["mcc"] > 0.4 and grouped["roc_auc"] >= 0.8, grouped
    assert result["leakage_gap"] == pytest.approx(rows["random"]["accuracy"] - grouped["accuracy"])


def test_cnn_learner_cuts_each_row_into_its_own_patches(music_library: Any) -> None:
    from models.cnn import N_BANDS, PATCH_HOP_STEPS, PATCH_STEPS, TIME_POOL

    learner = music.MusicLearner(music_library)
    rows = np.array([0, 5, 47])
    X, labels = learner.patches(rows, music_library.dataset.y)
    row_steps = (music_library.row_frames[0, 1] - music_library.row_frames[0, 0]) // TIME_POOL
    per_row = len(range(0, row_steps - PATCH_STEPS + 1, PATCH_HOP_STEPS))
    assert X.shape == (3 * per_row, N_BANDS, PATCH_STEPS) and per_row >= 2
    assert list(labels) == [music_library.dataset.y[i] for i in rows for _ in range(per_row)]
    spec, a, _ = learner.row_span(5)
    np.testing.assert_array_equal(X[per_row], spec[:, a:a + PATCH_STEPS])  # row 5's first patch
    assert music_library.spectrograms[music_library.row_file[5]] is spec


@pytest.mark.timeout(180)
def test_cnn_trains_on_cpu_in_under_a_minute_and_round_trips(music_library: Any, music_library_dir: Path,
                                                               tmp_path: Path) -> None:
    import torch

    t0 = time.perf_counter()
    model = music.train_music_model(music_library, "cnn")
    assert time.perf_counter() - t0 < 60.0
    clf = model.estimator
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    path = tmp_path / "music.cnn"
    model.save(path)
    loaded = music.MusicModel.load(path)
    assert loaded.classifier == "cnn" and loaded.classes == EMOTIONS and loaded.meta["patches"] > 48
    assert loaded.describe() == "CNN on log-mel patches"
    spec = music_library.spectrograms[0]
    np.testing.assert_allclose(loaded.estimator.predict_clip(spec), clf.predict_clip(spec), atol=1e-6)
    correct = 0
    for emotion in EMOTIONS:  # clip prediction: the mean over the file's patches
        proba = loaded.predict_file(music_library_dir / emotion / "organ.wav")
        assert set(proba) == set(EMOTIONS) and sum(proba.values()) == pytest.approx(1.0)
        correct += max(proba, key=proba.__getitem__) == emotion
    assert correct >= 3  # training files: a sanity check of the saved network

    # refused: pickled code, a tampered tensor, a CNN file that is not a music model
    payload = torch.load(path, weights_only=True)
    key = next(k for k in payload["state_dict"] if k.endswith("weight"))
    payload["state_dict"][key] = torch.zeros(2, 2)
    torch.save(payload, tmp_path / "tampered.cnn")
    with pytest.raises(ModelFormatError, match="damaged CNN model"):
        music.MusicModel.load(tmp_path / "tampered.cnn")
    clf.save(tmp_path / "eeg.cnn", meta={"kind": "eeg"})
    with pytest.raises(ModelFormatError, match="a CNN model, but not a music model"):
        music.MusicModel.load(tmp_path / "eeg.cnn")
    with pytest.raises(DataError, match="too short for the CNN"):
        loaded.estimator.predict_clip(spec[:, :10])


def test_cnn_seeded_training_is_reproducible(music_library: Any) -> None:
    X, y = music.MusicLearner(music_library).patches(np.arange(0, 48, 6), music_library.dataset.y)
    a = CnnClassifier(epochs=2, channels=(4, 4, 4, 4), random_state=3).fit(X, y).predict_proba(X)
    b = CnnClassifier(epochs=2, channels=(4, 4, 4, 4), random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="dropout must be in"):
        CnnClassifier(dropout=1.0)
    with pytest.raises(DataError, match="patches must have shape"):
        CnnClassifier().fit(X[:, :, :8], y)


def test_lstm_seeded_training_is_reproducible(music_library: Any) -> None:
    X, y = music_library.sequences[::4], music_library.dataset.y[::4]
    a = LstmClassifier(epochs=5, hidden_size=8, random_state=3).fit(X, y).predict_proba(X)
    b = LstmClassifier(epochs=5, hidden_size=8, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_sklearn_music_bundle_round_trip_and_prediction(music_library: Any, music_library_dir: Path,
                                                        tmp_path: Path) -> None:
    model = music.train_music_model(music_library, "logreg")
    path = tmp_path / "music.skops"
    model.save(path)
    loaded = music.MusicModel.load(path)
    assert loaded.classifier == "logreg" and loaded.classes == EMOTIONS
    assert loaded.meta["kind"] == "music" and loaded.meta["segment_s"] == 6.0
    correct = 0
    for emotion in EMOTIONS:
        for f in sorted((music_library_dir / emotion).iterdir()):
            proba = loaded.predict_file(f)
            assert sum(proba.values()) == pytest.approx(1.0)
            correct += max(proba, key=proba.__getitem__) == emotion
    assert correct >= 14  # training files: a sanity check of the saved pipeline

    (tmp_path / "notes.txt").write_text("not audio")
    rows = music.describe_stimuli([music_library_dir / "happy" / "bells.wav", tmp_path / "notes.txt"], loaded)
    assert rows[0]["perceived"] in EMOTIONS and set(rows[0]["perceived_probabilities"]) == set(EMOTIONS)
    assert rows[0]["tempo_bpm"] == pytest.approx(140.0, rel=0.08) and rows[0]["tempo_status"] == "ok"
    assert 0.5 < rows[0]["tempo_confidence"] < 1.0
    assert rows[0]["mode"] in ("major", "minor") and rows[0]["energy_rms"] > 0
    assert set(rows[1]) == {"path", "error"}


def test_model_files_are_checked(music_library: Any, tmp_path: Path) -> None:
    import torch  # the deep extra is part of the test environment

    with pytest.raises(ModelFormatError, match="does not exist"):
        music.MusicModel.load(tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ModelFormatError):
        music.MusicModel.load(tmp_path / "text.pt")

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    torch.save({"format": "duygu-lstm", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelFormatError, match="weights_only"):
        music.MusicModel.load(tmp_path / "evil.pt")

    # a weights file whose tensors were tampered with (wrong shape) is refused
    model = music.train_music_model(music_library, "lstm", lstm_params={"epochs": 1, "hidden_size": 4})
    good = tmp_path / "good.pt"
    model.save(good)
    payload = torch.load(good, weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = torch.zeros(3)
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ModelFormatError, match="damaged"):
        music.MusicModel.load(tmp_path / "tampered.pt")
    assert zipfile.is_zipfile(good)

    # an EEG bundle (no kind "music") is refused by the music loader
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.bundle import save_bundle

    rng = np.random.default_rng(0)
    eeg = make_pipeline(StandardScaler(), LogisticRegression()).fit(rng.normal(size=(20, 3)), ["a", "b"] * 10)
    save_bundle(tmp_path / "eeg.skops", eeg, {"classifier": "logreg", "channels": ["AF3"], "sfreq_hz": 128.0})
    with pytest.raises(ModelFormatError, match="not a music model"):
        music.MusicModel.load(tmp_path / "eeg.skops")


def test_bad_library_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="must be a folder"):
        music.load_library(tmp_path / "missing")
    (tmp_path / "lib" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match=">= 2 sub-folders"):
        music.load_library(tmp_path / "lib")
    with pytest.raises(DataError, match="segment_s must be >= 4"):
        music.load_library(tmp_path / "lib", segment_s=1.0)
    with pytest.raises(DataError, match=r"classifier must be one of .*lstm, cnn or emb:NAME"):
        music.parse_music_classifiers("svm-rbf,nope")
    with pytest.raises(DataError, match="got 'emb:lstm'"):
        music.parse_music_classifiers("emb:lstm")
    assert music.parse_music_classifiers("CNN, emb:LogReg,lstm,cnn") == ["cnn", "emb:logreg", "lstm"]
    table = music.library_from_table(Dataset(np.zeros((4, 2)), np.array(["a", "b"] * 2), np.array(list("wxyz")),
                                             None, ["f", "g"]))
    for name, what in (("cnn", "spectrograms"), ("lstm", "frame sequences"), ("emb:lda", "embeddings")):
        with pytest.raises(DataError, match=what):
            music.MusicLearner(table).check([name])


def test_unreadable_and_short_library_files_are_skipped(tmp_path: Path) -> None:
    root = write_library(tmp_path / "lib", duration_s=7.0, styles=("bells", "organ"))
    (root / "sad" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    result = music.load_library(root, segment_s=6.0, hop_s=3.0, max_duration_s=7.0)
    reasons = dict(result.skipped)
    assert set(reasons) == {"sad/broken.wav"} and "not a readable audio file" in reasons["sad/broken.wav"]
    assert len(result.files) == 8
    with pytest.raises(DataError, match="fewer than 2 emotions"):
        music.load_library(root, segment_s=8.0, hop_s=3.0)
