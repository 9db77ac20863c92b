"""Stimulus library view (issue 6 item 4, issue 16 item 5): the protocol's stimuli with their
music features (tempo with its confidence), analysed off the GUI thread and cached, and the
perceived emotion of any music model loaded from a file (registry, CNN, embeddings)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.gui import qsettings_in

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
EMOTIONS = ("happy", "sad", "relaxing", "tense")
PROTOCOL_EMOTIONS = ("happy", "sad", "tense")  # three stimuli keep the test short


def _demo_protocol(folder: Path) -> Path:
    """A 3-stimulus protocol (the demo's bells) with absolute paths."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[protocol]", 'name = "stimuli-test"', "music_s = 30", "silence_s = 10", 'order = "fixed"', ""]
    for emotion in PROTOCOL_EMOTIONS:
        lines += ["[[stimuli]]", f'id = "bells-{emotion}"', f'path = "{DEMO / f"bells-{emotion}.ogg"}"',
                  'genre = "bells"', f'emotion = "{emotion}"', ""]
    path = folder / "protocol.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _value(text: str) -> float:
    return float(text) if text not in ("", "—", "…", "error") else math.nan


@pytest.mark.timeout(240)
def test_stimulus_view_features_cache_and_music_model(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.main_window import MainWindow
    from models import music
    from tests.support.music_data import write_library

    protocol = _demo_protocol(tmp_path / "protocol")
    win = MainWindow(qsettings=qsettings_in(tmp_path), store_path=tmp_path / "store.sqlite",
                     protocol_path=protocol, contact_quality=False, markers=False)
    qtbot.addWidget(win)
    win.show()
    try:
        view = win.stimulus_view
        win.tabs.setCurrentWidget(view)  # showing the tab starts the analysis
        qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=10000)
        qtbot.waitUntil(lambda: view.task is None, timeout=60000)
        rows = [view.row(r) for r in range(3)]
        assert [r["id"] for r in rows] == [f"bells-{e}" for e in PROTOCOL_EMOTIONS]
        assert [r["intended"] for r in rows] == list(PROTOCOL_EMOTIONS)
        for r in rows:
            assert math.isfinite(_value(r["tempo (BPM)"])) and _value(r["tempo (BPM)"]) > 0, r
            assert 0.5 <= _value(r["tempo confidence"]) < 1.0, r  # the demo pieces have a clear beat
            assert math.isfinite(_value(r["energy (RMS)"])) and _value(r["energy (RMS)"]) > 0, r
            assert _value(r["brightness (Hz)"]) > 0, r
            assert r["perceived"] == ""  # no model yet
        tempo = {r["intended"]: _value(r["tempo (BPM)"]) for r in rows}
        for emotion, bpm in (("happy", 140.0), ("sad", 60.0), ("tense", 160.0)):  # as synthesised
            assert tempo[emotion] == pytest.approx(bpm, rel=0.08), (emotion, tempo)
        from app.views.stimuli import TEMPO_COLUMN

        assert "BPM, confidence" in view.table.item(0, TEMPO_COLUMN).toolTip()
        assert len(view.features) == 3

        # cached per (path, mtime): analysing again starts no analysis
        view.refresh()
        qtbot.waitUntil(lambda: view.task is None, timeout=10000)
        assert view.table.rowCount() == 3 and len(view.features) == 3
        assert view.row(0)["tempo (BPM)"] == rows[0]["tempo (BPM)"]

        # a garbage model file: an error notification, no model
        junk = tmp_path / "junk.skops"
        junk.write_bytes(b"this is not a model")
        view.load_model(junk)
        qtbot.waitUntil(lambda: any("junk.skops" in m for m in win.notes.messages("error")), timeout=90000)
        assert view.model_path is None and "was not loaded" in view.model_label.text()

        # music models trained on a tiny synthesised library fill the perceived column: a registry
        # classifier and the CNN (an embedding model takes the same way: app.jobs, tested in
        # test_music_embedding)
        library = music.load_library(write_library(tmp_path / "library", styles=("organ", "plucks")),
                                     segment_s=6.0, hop_s=3.0)
        models = {"logreg": ("music.skops", "logreg on clip summaries"), "cnn": ("music.cnn", "CNN on log-mel patches")}
        for classifier, (name, description) in models.items():
            model_path = tmp_path / name
            music.train_music_model(library, classifier, cnn_params={"epochs": 5}).save(model_path)
            view.load_model(model_path)
            qtbot.waitUntil(lambda p=model_path: view.model_path == p, timeout=60000)
            assert description in view.model_label.text()
            qtbot.waitUntil(lambda: view.task is None and all(
                view.row(r)["perceived"].split(" ")[0] in EMOTIONS for r in range(3)), timeout=90000)
            for r in range(3):
                _label, prob = view.row(r)["perceived"].split(" ")
                assert 0.0 < float(prob.strip("()")) <= 1.0, classifier
        assert len(view.features) == 3  # predictions did not analyse the features again
    finally:
        win.close()
    assert win.pool.active == []
