"""Engine jobs the GUI runs in a child process (:func:`app.procs.call_in_process`); no Qt here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def export_session(store_path: str, session_id: int, fmt: str, out_dir: str) -> str:
    """Export one stored session as ``bids`` or ``csv`` into ``out_dir``; returns the written path.

    A BIDS export takes the mains frequency (``notch_hz``) and the dataset's ``authors``
    from the settings, as ``duygu sessions export`` does.
    """
    from acquisition.errors import DataError
    from acquisition.settings import load_settings
    from acquisition.store.export import export_bids, export_csv
    from acquisition.store.sqlite import SessionStore

    if fmt not in ("bids", "csv"):
        raise DataError(f"export format must be bids or csv, got {fmt!r}")
    settings = load_settings() if fmt == "bids" else None
    store = SessionStore(Path(store_path), readonly=True)
    try:
        if settings is not None:
            return str(export_bids(store, int(session_id), Path(out_dir), power_line_hz=settings.notch_hz,
                                   authors=settings.authors))
        return str(export_csv(store, int(session_id), Path(out_dir)))
    finally:
        store.close()


def train(store_path: str, session_ids: list[int], protocol: str, preset: str, classifiers: list[str],
          n_permutations: int, final: str | None, bundle_out: str,
          progress: Callable[[float, str], None] | None = None, n_jobs: int = -1) -> dict[str, Any]:
    """Evaluate ``classifiers`` on the labelled trials of ``session_ids``, train the best one on
    the protocol's main split (never ``random``: that split leaks) and save it to ``bundle_out``;
    returns the evaluation, the classifier, the trial count and classes.
    """
    from acquisition.errors import DataError
    from acquisition.store.sqlite import SessionStore
    from app.progress import Eta
    from models.bundle import inner_cv_warning, save_bundle, train_bundle
    from models.datasets import from_trials
    from models.evaluation import best_main_row, run_evaluation
    from models.registry import WINDOWS, input_of

    report = progress or (lambda _f, _t="": None)
    report(0.0, "reading trials")
    store = SessionStore(Path(store_path), readonly=True)
    try:
        trials = store.labelled_trials(session_ids=list(session_ids) or None)
    finally:
        store.close()
    if not trials:
        raise DataError(f"no labelled trials in session(s) {list(session_ids)} of {store_path}")
    report(0.05, f"features of {len(trials)} trials")
    from acquisition.settings import load_settings

    dataset = from_trials(trials, preset, keep_windows=any(input_of(c) == WINDOWS for c in classifiers),
                          cache_dir=load_settings().features_cache_dir)
    report(0.15, "cross-validation")
    eta = Eta()

    def on_unit(done: int, total: int) -> None:
        eta.update(done, total)
        report(0.15 + 0.75 * done / max(total, 1), f"cross-validation {eta.short()}")

    evaluation = run_evaluation(dataset, protocol=protocol, classifiers=classifiers, n_permutations=n_permutations,
                                n_jobs=n_jobs, progress=on_unit)
    result = evaluation.as_full_json()
    best = final or best_main_row(result)["classifier"]
    report(0.92, f"training {best} on every trial")
    bundle = train_bundle(dataset, best, protocol_result=evaluation)
    save_bundle(Path(bundle_out), bundle.estimator, bundle.meta)
    report(1.0, "done")
    fallback = inner_cv_warning(bundle)  # the final fit's own inner CV, as `duygu train` warns
    return {"evaluation": result, "classifier": best, "n_trials": len(trials), "classes": list(dataset.classes),
            "warnings": [*evaluation.warnings, *([fallback] if fallback else [])]}


def describe_stimuli(paths: list[str], model_path: str | None = None, features: bool = True,
                     progress: Callable[[float, str], None] | None = None) -> list[dict[str, Any]]:
    """Rows of :func:`models.music.describe_stimuli` for ``paths`` (features when ``features``,
    the perceived emotion when ``model_path`` names a music model), one file at a time.

    Without ``features`` a row holds only ``path`` and the perception keys (``perceived``,
    ``perceived_probabilities``, or ``perceived_error``).
    """
    from models import music

    def report(fraction: float, text: str = "") -> None:
        if progress is not None:
            progress(fraction, text)

    model = music.MusicModel.load(model_path) if model_path else None
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        report(i / max(len(paths), 1), f"analysing {Path(path).name}")
        if features:
            rows.extend(music.describe_stimuli([path], model))
            continue
        row: dict[str, Any] = {"path": str(path)}
        if model is not None:
            row.update(music.perceived_fields(model, path))
        rows.append(row)
    report(1.0, "done")
    return rows


def music_model_info(model_path: str) -> dict[str, Any]:
    """Load a music model (:meth:`models.music.MusicModel.load`) to check it; returns its
    classifier, a one-line description and its classes (``ModelFormatError`` for foreign or
    damaged files, or an embedding model whose transformer folder is gone or changed)."""
    from models import music

    model = music.MusicModel.load(model_path)
    return {"classifier": model.classifier, "description": model.describe(), "classes": list(model.classes)}
