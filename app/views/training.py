"""Training view: pick sessions from the store, evaluate classifiers, train and save a bundle.

Everything slow (reading the store, feature extraction, cross-validation, fitting,
saving) runs in one worker with a progress bar and a cancel button; the results table
and the confusion matrix fill in when it is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.state import AppState
from app.store_queries import list_sessions
from app.workers import Task

METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc")
PROTOCOLS = (("grouped", "grouped by trial (honest)"), ("paper", "paper (5-fold CV + 70/30 + 80/20)"),
             ("loso", "leave one subject out"))
#: "Evaluate and train" chooses by inner CV unless the operator ticks classifiers
DEFAULT_CLASSIFIERS = ("auto",)
#: permutations of the reference (shrinkage LDA): p-values down to 1/201
DEFAULT_PERMUTATIONS = 200


def run_training(task: Task, store_path: Path, session_ids: list[int], protocol: str, preset: str,
                 classifiers: list[str], n_permutations: int, final: str | None) -> dict[str, Any]:
    """Evaluate and train in a child process (:func:`app.jobs.train`), then load the bundle.

    Returns ``{"evaluation": dict, "bundle": Bundle, "classifier": str, "n_trials": int,
    "classes": list}``. Cancelling the task kills the child.
    """
    import tempfile

    from app.procs import call_in_process
    from models.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="duygu-train-") as tmp:
        bundle_out = Path(tmp) / "model.skops"
        out = call_in_process("app.jobs:train", str(store_path), list(session_ids), protocol, preset,
                              list(classifiers), int(n_permutations), final, str(bundle_out),
                              cancelled=lambda: task.cancelled, progress=task.progress)
        out["bundle"] = load_bundle(bundle_out)
    return out


class TrainingView(QWidget):
    """Sessions, options, run/cancel with progress, results table and confusion matrix."""

    trained = Signal(object)  # Bundle

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task: Task | None = None
        self.result: dict[str, Any] | None = None
        self.bundle: Any = None
        self.bundle_path: Path | None = None
        self.classes: list[str] = []
        self.best_index = -1

        # -- inputs
        left = QVBoxLayout()
        sess_box = QGroupBox("Sessions (labelled trials)")
        sl = QVBoxLayout(sess_box)
        self.store_label = QLabel()
        self.store_label.setWordWrap(True)
        self.store_label.setStyleSheet("color: #4b5563;")
        sl.addWidget(self.store_label)
        self.sessions = QListWidget()
        sl.addWidget(self.sessions, 1)
        row = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        for b in (self.refresh_button, self.all_button, self.none_button):
            row.addWidget(b)
        sl.addLayout(row)
        left.addWidget(sess_box, 1)

        opt_box = QGroupBox("Evaluation")
        form = QFormLayout(opt_box)
        self.protocol = QComboBox()
        self.protocol.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.protocol.setMinimumContentsLength(14)
        for key, label in PROTOCOLS:
            self.protocol.addItem(label, key)
        form.addRow("Protocol", self.protocol)
        self.preset = QComboBox()
        self.preset.addItem("default", "default")
        self.preset.addItem("paper (replication)", "paper")
        self.preset.setToolTip("default: windows of seconds with band power, differential entropy and "
                               "asymmetry; paper: the paper's 25 ms frames, for replication only")
        form.addRow("Features", self.preset)
        self.classifiers = QListWidget()
        self.classifiers.setMaximumHeight(150)
        self.set_classifier_names(list(DEFAULT_CLASSIFIERS))
        form.addRow("Classifiers", self.classifiers)
        self.permutations = QSpinBox()
        self.permutations.setRange(0, 1000)
        self.permutations.setValue(DEFAULT_PERMUTATIONS)
        self.permutations.setToolTip("Label permutations of the reference (shrinkage LDA) for the chance level "
                                     "and p-value (0: majority rate)")
        form.addRow("Permutations", self.permutations)
        left.addWidget(opt_box)

        run_row = QHBoxLayout()
        self.run_button = QPushButton("Evaluate and train")
        self.run_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        left.addLayout(run_row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        left.addWidget(self.progress)
        left_w = QWidget()
        left_w.setLayout(left)

        # -- results
        right = QVBoxLayout()
        self.summary = QLabel("No results yet: choose sessions and press <b>Evaluate and train</b>.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size: 11pt;")
        right.addWidget(self.summary)
        self.table = QTableWidget(0, 2 + len(METRICS))
        self.table.setHorizontalHeaderLabels(["classifier", "split", *METRICS])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        right.addWidget(self.table, 1)
        self.cm_plot = pg.PlotWidget()
        self.cm_plot.setBackground("w")
        cp = self.cm_plot.getPlotItem()
        cp.setMouseEnabled(x=False, y=False)
        cp.hideButtons()
        cp.setAspectLocked(True)
        cp.setLabel("bottom", "predicted")
        cp.setLabel("left", "reported")
        for side in ("bottom", "left"):
            cp.getAxis(side).enableAutoSIPrefix(False)
            cp.hideAxis(side)  # no odd empty axes before there is a matrix
        self.cm_placeholder = pg.TextItem("the confusion matrix of the selected row appears here",
                                          color="#6b7280", anchor=(0.5, 0.5))
        self.cm_placeholder.setPos(0.5, 0.5)
        cp.addItem(self.cm_placeholder)
        cp.setXRange(0, 1, padding=0)
        cp.setYRange(0, 1, padding=0)
        self.cm_image = pg.ImageItem(axisOrder="row-major")
        self.cm_image.setColorMap(pg.colormap.get("CET-L12"))
        cp.addItem(self.cm_image)
        self._cm_row: dict[str, Any] | None = None
        self.cm_texts: list[pg.TextItem] = []
        right.addWidget(self.cm_plot, 1)
        save_row = QHBoxLayout()
        self.bundle_label = QLabel("no model trained")
        self.bundle_label.setWordWrap(True)
        save_row.addWidget(self.bundle_label, 1)
        self.save_button = QPushButton("Save bundle…")
        self.save_button.setEnabled(False)
        self.use_button = QPushButton("Use in live prediction")
        self.use_button.setEnabled(False)
        save_row.addWidget(self.save_button)
        save_row.addWidget(self.use_button)
        right.addLayout(save_row)
        right_w = QWidget()
        right_w.setLayout(right)

        split = QSplitter()
        split.addWidget(left_w)
        split.addWidget(right_w)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.refresh_button.clicked.connect(self.refresh_sessions)
        self.all_button.clicked.connect(lambda: self._check_all(True))
        self.none_button.clicked.connect(lambda: self._check_all(False))
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self._save_dialog)
        self.use_button.clicked.connect(self._use)
        self.table.itemSelectionChanged.connect(self._show_selected_confusion)
        state.classifiers_ready.connect(self.set_classifier_names)
        state.sessions_changed.connect(self.refresh_sessions)
        self.refresh_sessions()

    # -- inputs ------------------------------------------------------------------------
    def set_classifier_names(self, names: list[str]) -> None:
        """Fill the classifier list (the registry is loaded in a worker at start-up)."""
        checked = set(self.selected_classifiers()) or set(DEFAULT_CLASSIFIERS)
        self.classifiers.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked)
            self.classifiers.addItem(item)

    def _check_all(self, on: bool) -> None:
        for i in range(self.sessions.count()):
            self.sessions.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def refresh_sessions(self) -> Task:
        path = self.state.store_path
        self.store_label.setText(f"store: {path}")

        def done(rows: list[dict[str, Any]]) -> None:
            checked = set(self.selected_sessions())
            self.sessions.clear()
            for r in rows:
                item = QListWidgetItem(f"#{r['id']}  {r['participant']}  ·  {r['protocol']}  ·  "
                                       f"{r['labelled']}/{r['trials']} labelled  ·  {r['status']}")
                item.setData(Qt.ItemDataRole.UserRole, int(r["id"]))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                on = int(r["id"]) in checked or (not checked and int(r["labelled"]) > 0)
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                if int(r["labelled"]) == 0:
                    item.setForeground(pg.mkColor("#9ca3af"))
                self.sessions.addItem(item)

        return self.state.pool.submit("list sessions", lambda _t: list_sessions(path), on_result=done)

    def selected_sessions(self) -> list[int]:
        out = []
        for i in range(self.sessions.count()):
            item = self.sessions.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(int(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def selected_classifiers(self) -> list[str]:
        return [self.classifiers.item(i).text() for i in range(self.classifiers.count())
                if self.classifiers.item(i).checkState() == Qt.CheckState.Checked]

    def set_classifiers(self, names: list[str]) -> None:
        for i in range(self.classifiers.count()):
            item = self.classifiers.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    # -- run ---------------------------------------------------------------------------
    def start(self) -> Task | None:
        notes = self.state.notes
        sessions = self.selected_sessions()
        classifiers = self.selected_classifiers()
        if not sessions:
            notes.warning("choose at least one session with labelled trials")
            return None
        if not classifiers:
            notes.warning("choose at least one classifier")
            return None
        if self.task is not None and not self.task.is_done:
            notes.warning("training is already running")
            return None
        args = (self.state.store_path, sessions, str(self.protocol.currentData()),
                str(self.preset.currentData()), classifiers, int(self.permutations.value()), None)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.task = self.state.pool.submit(
            "training", lambda task: run_training(task, *args), on_result=self._done,
            on_progress=self._progress, on_done=self._finished)
        self.task.signals.cancelled.connect(lambda: notes.notify("training cancelled", "warning"))
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.progress.setFormat("cancelling…")

    def _progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(1000 * fraction))
        self.progress.setFormat(f"{text} — {100 * fraction:.0f}%")

    def _finished(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.task is not None and self.task.error:
            self.progress.setValue(0)
            self.progress.setFormat("failed")
        elif self.task is not None and self.task.cancelled:
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
        else:  # never left at the last reported fraction
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("done")

    def _done(self, out: dict[str, Any]) -> None:
        self.result = out["evaluation"]
        self.classes = list(out.get("classes", []))
        self.bundle = out["bundle"]
        self.bundle_path = None
        self.show_result(self.result)
        meta = getattr(self.bundle, "meta", {}) or {}
        classes = ", ".join(meta.get("classes", []))
        self.bundle_label.setText(f"trained <b>{out['classifier']}</b> on {out['n_trials']} trials"
                                  + (f" ({classes})" if classes else "") + " — not saved yet")
        self.save_button.setEnabled(True)
        self.use_button.setEnabled(True)
        for message in out.get("warnings", []):
            self.state.notes.warning(message)
        self.state.notes.notify(f"training done: {out['classifier']} on {out['n_trials']} trials", "success")
        self.trained.emit(self.bundle)

    # -- results -----------------------------------------------------------------------
    def best_row(self, result: dict[str, Any]) -> int:
        """Index of the row to highlight: the best balanced accuracy on the protocol's main
        split (never a ``random`` row: that split leaks); -1 when there is none."""
        from acquisition.errors import DataError
        from models.evaluation import best_main_row  # loaded by now: the result came from it

        try:
            best = best_main_row(result)
        except DataError:
            return -1
        return next(i for i, r in enumerate(result["results"]) if r is best)

    def show_result(self, result: dict[str, Any]) -> None:
        rows = result["results"]
        self.table.setRowCount(len(rows))
        best = self.best_row(result)
        self.best_index = best
        for i, r in enumerate(rows):
            cells = [r["classifier"], r["split"], *(f"{r[m]:.3f}" for m in METRICS)]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if i == best:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if r["split"] == "random":
                    item.setForeground(pg.mkColor("#9ca3af"))
                    item.setToolTip("random k-fold of overlapping windows: leaky, shown for the leakage gap only")
                self.table.setItem(i, j, item)
        gap = result.get("leakage_gap")
        gap_text = "" if gap is None else f" · leakage gap (random − grouped): <b>{gap:+.3f}</b>"
        perm = result.get("permutation") or {}
        p_text = ""
        if perm.get("p_values"):
            ref = perm["reference"]
            p_text = f" ({perm['n_permutations']} permutations of {ref}, p = {perm['p_values'][ref]:.3g})"
        auto = result.get("auto")
        auto_text = "" if not auto else " · auto chose " + ", ".join(f"{k} ×{n}" for k, n in auto["chosen"].items())
        self.summary.setText(f"protocol <b>{result['protocol']}</b> · chance <b>{result['chance']:.3f}</b>"
                             + p_text + gap_text + auto_text)
        if best >= 0:
            self.table.selectRow(best)
            self.show_confusion(rows[best])

    def _show_selected_confusion(self) -> None:
        if self.result is None:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.show_confusion(self.result["results"][rows[0].row()])

    def _classes(self) -> list[str]:
        if self.classes:
            return self.classes
        meta = getattr(self.bundle, "meta", None) or {}
        return list(meta.get("classes", []))

    def show_confusion(self, row: dict[str, Any]) -> None:
        if row is self._cm_row:  # the same row again (selecting the best row re-sends it)
            return
        self._cm_row = row
        cm = np.asarray(row["confusion"], dtype=float)
        n = len(cm)
        classes = self._classes() or [str(i) for i in range(n)]
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        self.cm_image.setImage(norm[::-1], levels=(0.0, 1.0))
        self.cm_image.setRect(0, 0, n, n)
        p = self.cm_plot.getPlotItem()
        self.cm_placeholder.hide()
        p.showAxis("bottom")
        p.showAxis("left")
        # the cell texts are made once and reused: creating 16 TextItems per result costs
        # tens of milliseconds of the GUI thread
        while len(self.cm_texts) < n * n:
            t = pg.TextItem("", anchor=(0.5, 0.5))
            p.addItem(t)
            self.cm_texts.append(t)
        for k, t in enumerate(self.cm_texts):
            i, j = divmod(k, n)
            if k >= n * n:
                t.setVisible(False)
                continue
            t.setText(f"{int(cm[i, j])}", color="w" if norm[i, j] > 0.55 else "#111827")
            t.setPos(j + 0.5, n - i - 0.5)
            t.setVisible(True)
        p.getAxis("bottom").setTicks([[(j + 0.5, c) for j, c in enumerate(classes[:n])]])
        p.getAxis("left").setTicks([[(n - i - 0.5, c) for i, c in enumerate(classes[:n])]])
        p.setTitle(f"{row['classifier']} · {row['split']} · accuracy {row['accuracy']:.2f}", size="10pt")
        p.setXRange(0, n, padding=0.02)
        p.setYRange(0, n, padding=0.02)

    # -- bundle ------------------------------------------------------------------------
    def default_bundle_path(self) -> Path:
        meta = getattr(self.bundle, "meta", None) or {}
        name = meta.get("classifier", "model")
        return self.state.settings.models_dir / f"duygu-{name}.skops"

    def _save_dialog(self) -> None:
        self.state.settings.models_dir.mkdir(parents=True, exist_ok=True)  # else the dialog opens elsewhere
        path, _ = QFileDialog.getSaveFileName(self, "Save model bundle", str(self.default_bundle_path()),
                                              "skops bundle (*.skops)")
        if path:
            self.save_bundle(Path(path))

    def save_bundle(self, path: Path) -> Task | None:
        """Save the trained bundle to ``path`` in a worker.

        Never over a session store: the window's own store (even before it exists) is
        refused here, any other store by the writer (:func:`~acquisition.settings.atomic_output`),
        each as a one-line error notification.
        """
        if self.bundle is None:
            self.state.notes.warning("train a model before saving it")
            return None
        from acquisition.settings import store_files

        if Path(path).expanduser().resolve() in store_files(self.state.store_path):
            self.state.notes.error(f"{path} is this window's session store; choose another file for the bundle")
            return None
        bundle = self.bundle

        def job(_task: Task) -> Path:
            from models.bundle import save_bundle

            path.parent.mkdir(parents=True, exist_ok=True)
            save_bundle(path, bundle.estimator, bundle.meta)
            return path

        def done(p: Path) -> None:
            self.bundle_path = p
            self.bundle_label.setText(f"saved: {p}")
            self.state.notes.notify(f"model bundle saved to {p}", "success")

        return self.state.pool.submit("save bundle", job, on_result=done)

    def _use(self) -> None:
        if self.bundle is not None:
            self.state.choose_bundle(self.bundle, "trained just now")

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()
