"""Pretrained audio embeddings from a local model folder (``--embedding PATH``): loaded
offline with transformers, pooled hidden states as clip features for the registry
classifiers, on the shared evaluation engine. The model is a tiny random HuBERT the test
builds from a config (the loading code is the real one; no weights ship)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.errors import DataError, ModelFormatError
from app.cli import main
from models import music
from models.embedding import AudioEmbedder
from tests.support.music_embedding import write_tiny_audio_model

pytest_plugins = ("tests.support.music_fixtures",)

EMOTIONS = ["happy", "relaxing", "sad", "tense"]


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HuBERT-with-CTC-head folder, as hubert-large-ls960-ft is saved (but 32 wide, 2 layers)."""
    return write_tiny_audio_model(tmp_path_factory.mktemp("models") / "hubert-tiny", "hubert", ctc=True)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_model_loads_offline_and_pools_a_layer(tiny_hubert: Path, tmp_path: Path, no_network: None) -> None:
    last = AudioEmbedder.load(tiny_hubert)
    first = AudioEmbedder.load(tiny_hubert, layer=0)
    assert (last.model_type, last.hidden_size, last.n_layers, last.sampling_rate_hz) == ("hubert", 32, 2, 16000)
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(3 * 16000)).astype(np.float32)
    a, b = last.embed(y), last.embed(y)
    assert a.shape == (32,) and np.all(np.isfinite(a)) and np.array_equal(a, b)
    assert not np.allclose(first.embed(y), a)  # another layer, another vector
    info = last.describe()
    assert info["path"] == str(tiny_hubert.resolve()) and info["layer"] == -1 and len(info["fingerprint_sha256"]) == 64
    # the same architecture without the CTC head, and wav2vec 2.0, load the same way
    w2v = AudioEmbedder.load(write_tiny_audio_model(tmp_path / "w2v", "wav2vec2", ctc=False))
    assert w2v.model_type == "wav2vec2" and w2v.embed(y).shape == (32,)


def test_bad_model_folders_are_refused_with_one_line(tiny_hubert: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="must be a folder"):
        AudioEmbedder.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"has no config\.json"):
        AudioEmbedder.load(tmp_path / "empty")
    text = tmp_path / "text"
    text.mkdir()
    (text / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(ModelFormatError, match="model_type must be one of hubert, wav2vec2"):
        AudioEmbedder.load(text)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_hubert / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelFormatError, match="weights do not load"):
        AudioEmbedder.load(broken)
    with pytest.raises(DataError, match=r"embedding layer must be in -3\.\.2 .* got 5"):
        AudioEmbedder.load(tiny_hubert, layer=5)


@pytest.mark.timeout(180)
def test_embeddings_are_clip_features_on_the_shared_engine(music_library_dir: Path, tiny_hubert: Path,
                                                          tmp_path: Path) -> None:
    embedder = AudioEmbedder.load(tiny_hubert)
    lib = music.load_library(music_library_dir, segment_s=6.0, hop_s=3.0, embedder=embedder)
    assert lib.embeddings is not None and lib.embeddings.shape == (48, 32) and np.all(np.isfinite(lib.embeddings))
    # a row's embedding is the model on exactly that segment of its file
    a, b = lib.row_frames[4]
    path = music_library_dir / lib.files[lib.row_file[4]]
    rate = 22050 / 512
    np.testing.assert_allclose(lib.embeddings[4], embedder.embed_file(path, [(a / rate, b / rate)])[0], atol=1e-6)

    result = music.evaluate_library(lib, "grouped", ["emb:lda", "emb:logreg", "lda"], n_permutations=2)
    assert set(result) == {"protocol", "chance", "results", "leakage_gap", "dataset"}
    rows = {(r["classifier"], r["split"]): r for r in result["results"]}
    assert set(rows) == {(c, s) for c in ("emb:lda", "emb:logreg", "lda") for s in ("grouped", "random")}
    for row in rows.values():
        assert {"accuracy", "precision", "recall", "f1", "mcc", "roc_auc"} <= set(row)
        assert np.array(row["confusion"]).sum() == 48 and 0.0 <= row["accuracy"] <= 1.0
    assert rows[("emb:lda", "grouped")] != rows[("lda", "grouped")]  # other features, other result
    json.dumps(result, allow_nan=False)
    # default classifiers with embeddings add the emb: ones
    assert music.default_classifiers(True)[-3:] == ["emb:logreg", "emb:svm-rbf", "emb:knn"]

    model = music.train_music_model(lib, "emb:lda")
    out = tmp_path / "emb.skops"
    model.save(out)
    loaded = music.MusicModel.load(out)
    assert loaded.classifier == "emb:lda" and loaded.embedder is not None
    assert loaded.describe() == "lda on hubert embeddings (hubert-tiny, layer -1)"
    assert loaded.meta["embedding"]["fingerprint_sha256"] == embedder.fingerprint
    proba = loaded.predict_file(music_library_dir / "sad" / "organ.wav")
    assert set(proba) == set(EMOTIONS) and sum(proba.values()) == pytest.approx(1.0)
    # what the Stimuli view runs in its child process
    from app import jobs

    info = jobs.music_model_info(str(out))
    assert info == {"classifier": "emb:lda", "description": loaded.describe(), "classes": EMOTIONS}
    rows_st = jobs.describe_stimuli([str(music_library_dir / "happy" / "bells.wav")], str(out))
    assert rows_st[0]["perceived"] in EMOTIONS and rows_st[0]["tempo_status"] == "ok"

    # the folder is checked when the model is loaded: gone, or holding another model
    moved = tiny_hubert.with_name("hubert-moved")
    tiny_hubert.rename(moved)
    try:
        with pytest.raises(ModelFormatError, match=r"its embedding model cannot be used: .*must be a folder"):
            music.MusicModel.load(out)
        write_tiny_audio_model(tiny_hubert, "hubert", ctc=True, seed=1)
        with pytest.raises(ModelFormatError, match="holds other files than the model was trained with"):
            music.MusicModel.load(out)
    finally:
        for f in tiny_hubert.iterdir():
            f.unlink()
        tiny_hubert.rmdir()
        moved.rename(tiny_hubert)
    assert music.MusicModel.load(out).classifier == "emb:lda"


@pytest.mark.timeout(180)
def test_cli_embedding_evaluate_train_predict(music_library_dir: Path, tiny_hubert: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--segment-s", "6", "--hop-s", "3", "--embedding", str(tiny_hubert), "--embedding-layer", "1"]
    out = tmp_path / "eval.json"
    assert main(["music", "evaluate", str(music_library_dir), "--classifiers", "emb:lda", *common,
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["classifier"] for r in result["results"]] == ["emb:lda", "emb:lda"]
    captured = capsys.readouterr()
    assert "emb:lda" in captured.out and "embedding: hubert from" in captured.err
    assert "Loading weights" not in captured.err  # transformers' progress bars stay quiet

    model = tmp_path / "emb.skops"
    assert main(["music", "train", str(music_library_dir), "--classifier", "emb:lda", *common,
                 "--out", str(model)]) == 0
    assert "lda on hubert embeddings (hubert-tiny, layer 1)" in capsys.readouterr().out
    preds = tmp_path / "pred.json"
    assert main(["music", "predict", str(music_library_dir / "tense"), "--model", str(model), "--json", str(preds)]) == 0
    assert len(json.loads(preds.read_text())) == 4

    for argv, message in (
        (["music", "evaluate", str(music_library_dir), "--classifiers", "emb:lda"], "needs --embedding PATH"),
        (["music", "train", str(music_library_dir), "--classifier", "lda", "--embedding", str(tiny_hubert),
          "--out", str(tmp_path / "x.skops")], "--embedding is only read by emb:NAME classifiers"),
        (["music", "evaluate", str(music_library_dir), "--classifiers", "emb:lda", "--embedding",
          str(tmp_path / "nowhere")], "must be a folder"),
        (["music", "evaluate", "--features", "t.csv", "--label", "label", "--embedding", str(tiny_hubert)],
         "--embedding needs a library DIR"),
        (["music", "evaluate", str(music_library_dir), "--classifiers", "lda", "--embedding-layer", "3"],
         "--embedding-layer 3 needs --embedding PATH"),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("duygu: error: ") and message in err[-1], (argv, err[-1])
