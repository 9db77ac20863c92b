"""The CNN on the shipped demo stimuli (assets/demo): grouped CV far above chance, and a
model trained on the whole library in under a minute that predicts its pieces.

The library is what docs/MUSIC.md evaluates: the 16 pieces put in one folder per emotion
(the emotion is the end of the file name), 10 s segments every 5 s, 80 rows. The CNN is
the shipped one (default settings: 30 epochs, one torch thread, seeded), so its grouped
figures are the documented ones.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import music

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
EMOTIONS = ["happy", "relaxing", "sad", "tense"]


@pytest.fixture(scope="module")
def demo_library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``assets/demo/*-<emotion>.ogg`` copied into ``<emotion>/`` folders."""
    root = tmp_path_factory.mktemp("demo-lib")
    for emotion in EMOTIONS:
        pieces = sorted(DEMO.glob(f"*-{emotion}.ogg"))
        assert len(pieces) == 4, (emotion, pieces)
        (root / emotion).mkdir()
        for piece in pieces:
            shutil.copy2(piece, root / emotion / piece.name)
    return root


@pytest.fixture(scope="module")
def demo_library(demo_library_dir: Path) -> Any:
    library = music.load_library(demo_library_dir)  # the defaults: 10 s segments every 5 s
    assert len(library.files) == 16 and library.skipped == []
    assert library.dataset.n_rows == 80 and library.dataset.classes == EMOTIONS
    return library


@pytest.mark.timeout(600)  # 83-121 s on the loaded 2-core machine: 8 CNN fits of 300 patches
def test_cnn_grouped_cv_on_the_demo_library_is_far_above_chance(demo_library: Any) -> None:
    result = music.evaluate_library(demo_library, "grouped", ["cnn"])
    assert result["chance"] == 0.25
    rows = {r["split"]: r for r in result["results"]}
    assert set(rows) == {"grouped", "random"}
    grouped = rows["grouped"]
    assert np.array(grouped["confusion"]).sum() == 80
    # measured (deterministic here): accuracy 0.738, MCC 0.657, ROC AUC 0.916
    assert grouped["accuracy"] >= 0.55 and grouped["mcc"] >= 0.4 and grouped["roc_auc"] >= 0.8, grouped
    assert result["leakage_gap"] == pytest.approx(rows["random"]["accuracy"] - grouped["accuracy"])


@pytest.mark.timeout(240)
def test_cnn_trains_on_the_demo_library_in_under_a_minute_and_predicts_it(
        demo_library: Any, demo_library_dir: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    model = music.train_music_model(demo_library, "cnn")
    seconds = time.perf_counter() - t0
    assert seconds < 60.0, f"training the CNN on the demo library took {seconds:.1f} s"  # 13-23 s here
    assert model.meta["patches"] == 400  # 80 segments x 5 patches
    assert model.estimator.loss_curve_[-1] < 0.5 * model.estimator.loss_curve_[0]
    path = tmp_path / "demo.cnn"
    model.save(path)
    loaded = music.MusicModel.load(path)
    correct = 0
    for piece in sorted(demo_library_dir.glob("*/*.ogg")):  # what `duygu music predict` does
        proba = loaded.predict_file(piece)
        assert set(proba) == set(EMOTIONS) and sum(proba.values()) == pytest.approx(1.0)
        correct += max(proba, key=proba.__getitem__) == piece.parent.name
    assert correct >= 14, f"{correct} of 16 pieces"  # training pieces (chance: 4): a sanity check
