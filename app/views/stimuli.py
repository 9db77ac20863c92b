"""Stimulus library view: the selected protocol's stimuli with their music features and,
with a music model loaded, the emotion the model perceives in each.

The analysis (librosa, a few seconds for 16 files) runs in a child process started from a
worker thread (:func:`app.procs.call_in_process`), so the GUI thread never waits on it.
Results are cached per ``(path, mtime)``, and predictions per ``(path, mtime, model,
model mtime)``: switching tabs or protocols does not analyse a file twice.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.state import AppState
from app.workers import Task

COLUMNS = ("id", "intended", "genre", "duration (s)", "tempo (BPM)", "tempo confidence", "energy (RMS)",
           "brightness (Hz)", "key / mode", "perceived", "file")
PERCEIVED_COLUMN = COLUMNS.index("perceived")
FEATURE_COLUMNS = range(COLUMNS.index("duration (s)"), PERCEIVED_COLUMN)
TEMPO_COLUMN = COLUMNS.index("tempo (BPM)")

FileKey = tuple[str, int]


def file_key(path: str | Path) -> FileKey:
    """Cache key of a file: its path and modification time (ns); mtime -1 if it is missing."""
    try:
        return str(path), Path(path).stat().st_mtime_ns
    except OSError:
        return str(path), -1


def load_stimuli(protocol_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The protocol's name and its stimuli as rows (id, emotion, genre, path); runs in a worker."""
    from acquisition.session.protocol import load_protocol

    protocol = load_protocol(protocol_path)
    return protocol.name, [{"id": s.id, "emotion": s.emotion, "genre": s.genre, "path": str(s.path)}
                           for s in protocol.stimuli]


def analyse(task: Task, feature_paths: list[str], predict_paths: list[str],
            model_path: str | None) -> dict[str, list[dict[str, Any]]]:
    """Features (and perception) of ``feature_paths``, perception only of ``predict_paths``,
    each batch in one child process; runs in a worker thread."""
    from app.procs import call_in_process

    out: dict[str, list[dict[str, Any]]] = {"features": [], "perceived": []}
    total = max(len(feature_paths) + len(predict_paths), 1)

    def relay(offset: int, n: int) -> Any:
        return lambda fraction, text="": task.progress((offset + fraction * n) / total, text)

    if feature_paths:
        out["features"] = call_in_process("app.jobs:describe_stimuli", feature_paths, model_path, True,
                                          cancelled=lambda: task.cancelled, progress=relay(0, len(feature_paths)))
    if predict_paths and model_path:
        out["perceived"] = call_in_process("app.jobs:describe_stimuli", predict_paths, model_path, False,
                                           cancelled=lambda: task.cancelled,
                                           progress=relay(len(feature_paths), len(predict_paths)))
    return out


def _tempo_text(feat: dict[str, Any]) -> str:
    """The tempo cell: the BPM when the tempo is confident, else what is known instead."""
    if feat.get("tempo_bpm") is not None:
        return _number(feat["tempo_bpm"], 1)
    return {"low confidence": "unsure", "no onsets": "no beat"}.get(str(feat.get("tempo_status")), "—")


def _tempo_tooltip(feat: dict[str, Any]) -> str:
    status = feat.get("tempo_status")
    estimate = feat.get("tempo_estimate_bpm")
    if status == "ok":
        return f"{estimate:.1f} BPM, confidence {feat['tempo_confidence']:.2f}"
    if status == "low confidence":
        return (f"no clear beat: the best guess is {estimate:.1f} BPM, confidence "
                f"{feat['tempo_confidence']:.2f} (below 0.5)")
    return {"no onsets": "no onsets: silence or a steady sound", "too short": "too short for a tempo (< 4 s)"}.get(
        str(status), "")


def _number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.{digits}f}"


class StimulusView(QWidget):
    """The protocol selected in the session view, one row per stimulus."""

    def __init__(self, state: AppState) -> None:
        super().__init__()
        self.state = state
        self.protocol_path: Path | None = None  # the protocol shown
        self.protocol_name = ""
        self.stimuli: list[dict[str, Any]] = []
        self.features: dict[FileKey, dict[str, Any]] = {}
        self.perceived: dict[tuple[FileKey, FileKey], dict[str, Any]] = {}
        self.model_path: Path | None = None
        self.model_info: dict[str, Any] | None = None
        self.task: Task | None = None
        self._generation = 0
        self._rerun = False  # a model arrived while an analysis ran: predict when it ends

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.title = QLabel("no protocol analysed yet")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.title, 1)
        self.analyse_button = QPushButton("Analyse protocol")
        self.analyse_button.setToolTip("Read the protocol chosen in the Session tab and analyse its stimuli")
        self.analyse_button.clicked.connect(self.refresh)
        top.addWidget(self.analyse_button)
        self.model_button = QPushButton("Load music model…")
        self.model_button.setToolTip("A model trained with 'duygu music train': registry or embedding classifier "
                                     "(.skops), LSTM or CNN (torch file)")
        self.model_button.clicked.connect(self._choose_model)
        top.addWidget(self.model_button)
        lay.addLayout(top)
        status = QHBoxLayout()
        self.model_label = QLabel("music model: none (the perceived column stays empty)")
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        status.addWidget(self.model_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%p%")
        self.progress.hide()
        status.addWidget(self.progress)
        self.status = QLabel("")
        status.addWidget(self.status)
        lay.addLayout(status)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        note = QLabel("Tempo (40–220 BPM, with its confidence: 'unsure' below 0.5), energy (mean RMS of the "
                      "waveform), brightness (spectral centroid) and key/mode are estimated from the audio. The "
                      "perceived emotion is the music model's most probable class (its probability in brackets); "
                      "compare it with the intended one.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        lay.addWidget(note)

    # -- protocol and analysis ---------------------------------------------------------
    def selected_protocol(self) -> Path:
        """The protocol chosen for the next session (the Session tab sets it)."""
        return self.state.protocol_path

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.selected_protocol() != self.protocol_path and self.task is None:
            self.refresh()

    def refresh(self) -> Task:
        """Read the selected protocol and analyse the stimuli not analysed yet."""
        path = self.selected_protocol()
        self._generation += 1
        generation = self._generation
        if self.task is not None:
            self.task.cancel()
        self.protocol_path = path
        self.status.setText("reading the protocol…")

        def loaded(out: tuple[str, list[dict[str, Any]]]) -> None:
            if generation == self._generation:
                self.protocol_name, self.stimuli = out
                self._fill()
                self._start_analysis(generation)

        def failed(text: str) -> None:
            if generation == self._generation:
                self.stimuli = []
                self._fill()
                self.title.setText(f"<b>{path.name}</b>: cannot be read")
                self.status.setText("")
                self.task = None

        self.task = self.state.pool.submit(f"stimuli of {path.name}", lambda task: load_stimuli(path),
                                           on_result=loaded, on_error=failed)
        return self.task

    def _model_key(self) -> FileKey | None:
        return file_key(self.model_path) if self.model_path is not None else None

    def _start_analysis(self, generation: int) -> None:
        keys = {s["path"]: file_key(s["path"]) for s in self.stimuli}
        model_key = self._model_key()
        missing = [p for p, k in keys.items() if k not in self.features]
        unpredicted = [p for p, k in keys.items()
                       if model_key is not None and k in self.features and (k, model_key) not in self.perceived]
        if not missing and not unpredicted:
            self.task = None
            self.status.setText("")
            self.progress.hide()
            return
        model_path = str(self.model_path) if self.model_path is not None else None
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"analysing {len(missing)} file(s)…" if missing else "predicting…")

        def done(out: dict[str, list[dict[str, Any]]]) -> None:
            for row in out["features"]:
                key = keys.get(row["path"], file_key(row["path"]))
                self.features[key] = row
                if model_key is not None:
                    self.perceived[(key, model_key)] = row
            for row in out["perceived"]:
                self.perceived[(keys.get(row["path"], file_key(row["path"])), model_key)] = row  # type: ignore[index]
            if generation == self._generation:
                self._fill()

        def finished() -> None:
            if generation == self._generation:
                self.task = None
                self.progress.hide()
                self.status.setText("")
                if self._rerun and self.model_path is not None:
                    self._rerun = False
                    self._generation += 1
                    self._start_analysis(self._generation)

        def progress(fraction: float, text: str) -> None:
            if generation == self._generation:
                self.progress.setValue(int(1000 * fraction))
                self.status.setText(text)

        self.task = self.state.pool.submit(
            "stimulus analysis", lambda task: analyse(task, missing, unpredicted, model_path),
            on_result=done, on_progress=progress, on_done=finished)

    # -- music model -------------------------------------------------------------------
    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Music model", str(self.state.settings.data_dir),
                                              "Music models (*.skops *.lstm *.cnn *.pt);;All files (*)")
        if path:
            self.load_model(Path(path))

    def load_model(self, path: Path) -> Task:
        """Check ``path`` is a music model (in a child process), then predict every stimulus.

        A file that is not one gives an error notification; the previous model stays.
        """
        path = Path(path)
        self.model_label.setText(f"music model: checking {path.name}…")

        def loaded(info: dict[str, Any]) -> None:
            self.model_path, self.model_info = path, info
            self.model_label.setText(f"music model: <b>{path.name}</b> ({info['description']}; "
                                     f"{', '.join(info['classes'])})")
            self._fill()
            if self.task is not None and not self.task.is_done:
                self._rerun = True
            elif self.stimuli:
                self._generation += 1
                self._start_analysis(self._generation)
            else:
                self.refresh()

        def failed(_text: str) -> None:  # the pool already shows the error as a notification
            current = self.model_path.name if self.model_path is not None else "none"
            self.model_label.setText(f"music model: {current} ({path.name} was not loaded)")

        def check(task: Task) -> dict[str, Any]:
            from app.procs import call_in_process

            return dict(call_in_process("app.jobs:music_model_info", str(path), cancelled=lambda: task.cancelled))

        return self.state.pool.submit(f"music model {path.name}", check, on_result=loaded, on_error=failed)

    # -- table -------------------------------------------------------------------------
    def _fill(self) -> None:
        n = len(self.stimuli)
        name = self.protocol_path.name if self.protocol_path is not None else ""
        self.title.setText(f"<b>{self.protocol_name or name}</b> — {n} stimuli "
                           f"<span style='color:#555'>({self.protocol_path})</span>")
        model_key = self._model_key()
        self.table.setRowCount(n)
        for r, stim in enumerate(self.stimuli):
            key = file_key(stim["path"])
            feat = self.features.get(key)
            pred = self.perceived.get((key, model_key)) if model_key is not None else None
            cells = [stim["id"], stim["emotion"], stim["genre"]]
            if feat is None:
                cells += ["…"] * len(FEATURE_COLUMNS)
            elif "error" in feat:
                cells += ["error"] + [""] * (len(FEATURE_COLUMNS) - 1)
            else:
                key_mode = str(feat.get("key") or feat.get("mode") or "—")
                cells += [_number(feat["duration_s"], 1), _tempo_text(feat), _number(feat.get("tempo_confidence"), 2),
                          _number(feat["energy_rms"], 4), _number(feat["brightness_hz"], 0), key_mode]
            cells.append(self._perceived_text(pred, model_key))
            cells.append(Path(stim["path"]).name)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                if c == COLUMNS.index("file"):
                    item.setToolTip(stim["path"])
                if feat is not None and "error" in feat and c in FEATURE_COLUMNS:
                    item.setToolTip(feat["error"])
                elif feat is not None and c == TEMPO_COLUMN:
                    item.setToolTip(_tempo_tooltip(feat))
                if c == PERCEIVED_COLUMN and pred is not None and pred.get("perceived"):
                    colour = "#15803d" if pred["perceived"] == stim["emotion"] else "#b45309"
                    item.setForeground(_brush(colour))
                    probs = pred.get("perceived_probabilities", {})
                    item.setToolTip(", ".join(f"{k} {v:.2f}" for k, v in probs.items()))
                elif c == PERCEIVED_COLUMN and pred is not None and pred.get("perceived_error"):
                    item.setToolTip(pred["perceived_error"])
                self.table.setItem(r, c, item)

    @staticmethod
    def _perceived_text(pred: dict[str, Any] | None, model_key: FileKey | None) -> str:
        if model_key is None:
            return ""
        if pred is None:
            return "…"
        if pred.get("perceived"):
            p = pred.get("perceived_probabilities", {}).get(pred["perceived"], float("nan"))
            return f"{pred['perceived']} ({p:.2f})"
        return "error" if pred.get("perceived_error") or pred.get("error") else ""

    # -- for tests and shutdown --------------------------------------------------------
    def row(self, r: int) -> dict[str, str]:
        """The texts of table row ``r`` by column name."""
        items = [self.table.item(r, c) for c in range(len(COLUMNS))]
        return {name: (item.text() if item is not None else "") for name, item in zip(COLUMNS, items, strict=True)}

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _brush(colour: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(colour))
