"""The whole flow through the GUI (offscreen, pytest-qt): connect the simulated EPOC+,
run a time-scaled session clicking the participant's labels, train, see live
probabilities, then replay the recorded session through the same views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.gui import qsettings_in, write_protocol

TIME_SCALE = 30.0


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    from app.main_window import MainWindow

    protocol = write_protocol(tmp_path / "protocol", n_per_class=3)
    win = MainWindow(qsettings=qsettings_in(tmp_path), store_path=tmp_path / "store.sqlite",
                     protocol_path=protocol, contact_quality=False, markers=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.mark.timeout(180)
def test_connect_session_train_predict_replay(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    # 1. connect the simulated headset (at the session's time scale) from the source panel
    panel = window.source_panel
    panel.set_kind("simulated")
    panel.sim_speed.setValue(TIME_SCALE)
    qtbot.mouseClick(panel.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.source is not None
                    and str(window.controller.source.status) == "streaming", timeout=10000)
    frames = window.signals_view.frames
    qtbot.waitUntil(lambda: window.signals_view.frames > frames + 3, timeout=5000)
    qtbot.waitUntil(lambda: panel.counter_labels["received"].text() not in ("—", "0"), timeout=5000)

    # 2. a time-scaled session; the participant answers on the label screen
    sv = window.session_view
    window.tabs.setCurrentWidget(sv)
    sv.participant.setText("P01")
    sv.labels_mode.setCurrentIndex(0)  # prompt
    sv.time_scale.setValue(TIME_SCALE)
    sv.audio.setChecked(False)  # no sound card on the test machine: the silent clock player
    with qtbot.waitSignal(sv.session_finished, timeout=120000) as finished:
        qtbot.mouseClick(sv.start_button, Qt.MouseButton.LeftButton)
        pv = window.prediction_view
        for k in range(12):
            qtbot.waitUntil(lambda: sv.prompt.active, timeout=20000)
            if k:  # the previous answer is still shown while the next piece has played
                assert pv.ctx_labels["reported"].text() == sv.reports[-1][2]
            intended = sv._current_intended
            button = next(b for b in sv.label_screen.buttons if b.property("label") == intended)
            qtbot.waitUntil(lambda b=button: b.isEnabled(), timeout=2000)
            qtbot.wait(int(sv.prompt.min_delay_s * 1000) + 20)  # a deliberate answer, not a leftover press
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
            assert not any(b.isEnabled() for b in sv.label_screen.buttons)  # a double click goes nowhere
            ignored = sv.prompt.n_ignored
            qtbot.keyClick(sv.label_screen, "2")  # nor does a key pressed after the answer
            assert sv.prompt.n_ignored == ignored + 1
    result = finished.args[0]
    assert result.status == "completed"
    assert len(result.trials) == 12
    assert len(sv.reports) == 12
    assert [r[2] for r in sv.reports] == [r[1] for r in sv.reports]  # reported == intended, each once
    assert sv.trial_label.text().startswith("Trial 12 of 12")
    # the session ended: its context is gone from live prediction
    assert [pv.ctx_labels[k].text() for k in ("playing", "intended", "reported")] == ["—", "—", "—"]
    assert pv.ctx_title.text() == "no session running"

    # 3. train on the recorded session
    tv = window.training_view
    window.tabs.setCurrentWidget(tv)
    tv.refresh_sessions()
    qtbot.waitUntil(lambda: tv.selected_sessions() == [result.session_id], timeout=5000)
    tv.set_classifiers(["logreg"])
    with qtbot.waitSignal(tv.trained, timeout=90000):
        qtbot.mouseClick(tv.run_button, Qt.MouseButton.LeftButton)
    assert tv.table.rowCount() >= 1
    accuracy = float(tv.table.item(0, 2).text())
    assert accuracy > 0.5  # 4 classes: chance is 0.25
    assert len(tv.cm_texts) == 16
    bundle_path = Path(window.settings.models_dir) / "gui-test.skops"
    task = tv.save_bundle(bundle_path)
    qtbot.waitUntil(lambda: task.is_done, timeout=30000)
    assert bundle_path.exists()

    # 4. live prediction on the source
    pv = window.prediction_view
    qtbot.mouseClick(tv.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is pv, timeout=5000)  # brought to the front
    qtbot.waitUntil(lambda: pv.n_predictions >= 3, timeout=15000)
    heights = np.asarray(pv.bars.opts["height"], dtype=float)
    assert heights.shape == (4,)
    assert abs(heights.sum() - 1.0) < 1e-6
    # the simulated participant blinks, tenses and moves: windows with an artefact are shown
    # greyed and never as the big word, so the first decision can take a few windows
    qtbot.waitUntil(lambda: pv.decision.text() in pv.classes, timeout=30000)
    assert "confidence" in pv.confidence.text()

    # 5. replay the recorded session through the same views at 20x
    rv = window.replay_view
    window.tabs.setCurrentWidget(rv)
    rv.refresh_sessions()
    qtbot.waitUntil(lambda: rv.table.rowCount() == 1, timeout=5000)
    rv.table.selectRow(0)
    rv.speed.setCurrentIndex(rv.speed.findData(20.0))
    qtbot.mouseClick(rv.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.source is not None and window.controller.source.kind == "replay"
                    and window.controller.source.counters.received > 256, timeout=10000)
    assert "#" in rv.replay_spec and rv.replay_spec.endswith("@20")
    assert panel.kind.currentData() == "replay" and "#" in panel.replay_path.text()  # the panel names the replay
    assert window.simulated_badge.isVisible()  # a replayed simulation is still marked as one
    qtbot.waitUntil(lambda: rv.position.value() > 0, timeout=5000)
    window.tabs.setCurrentWidget(window.signals_view)
    frames = window.signals_view.frames
    qtbot.waitUntil(lambda: window.signals_view.frames > frames + 3, timeout=5000)
    n = pv.n_predictions
    qtbot.waitUntil(lambda: pv.predictor is not None and pv.n_predictions > n, timeout=15000)
