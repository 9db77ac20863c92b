"""Datasets: feature tables, DEAP files (safe unpickling), labelled trials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from acquisition.errors import DataError
from acquisition.store.sqlite import LabelledTrial
from models.datasets import (
    DEAP_CHANNELS,
    deap_quadrant,
    from_trials,
    load_deap,
    load_feature_table,
    read_deap_file,
)
from tests.support.models_data import (
    simulated_trials,
    synthetic_dataset,
    write_deap_file,
    write_feature_csv,
    write_malicious_pickle,
)


def test_feature_table_round_trip(tmp_path: Path) -> None:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=3)
    path = write_feature_csv(tmp_path / "f.csv", ds, extra={"note": ["x"] * ds.n_rows})
    got = load_feature_table(path, "label", group="trial", drop=["note"])
    np.testing.assert_allclose(got.X, ds.X)
    assert got.y.tolist() == ds.y.tolist()
    assert got.groups is not None and got.groups.tolist() == ds.groups.tolist()  # type: ignore[union-attr]
    assert got.feature_names == ds.feature_names
    assert got.has_groups()


def test_feature_table_bad_inputs(tmp_path: Path) -> None:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=3)
    path = write_feature_csv(tmp_path / "f.csv", ds, extra={"note": ["x"] * ds.n_rows})
    with pytest.raises(DataError, match=r"feature column 'note' must be numeric.*--drop"):
        load_feature_table(path, "label", group="trial")
    with pytest.raises(DataError, match=r"label column 'emotion' is not in f.csv"):
        load_feature_table(path, "emotion", drop=["note"])
    with pytest.raises(DataError, match=r"--drop column 'nope'"):
        load_feature_table(path, "label", group="trial", drop=["note", "nope"])
    text = path.read_text().splitlines()
    first = text[1].split(",")
    first[0] = "nan"
    (tmp_path / "nan.csv").write_text("\n".join([text[0], ",".join(first), *text[2:]]) + "\n")
    with pytest.raises(DataError, match=r"finite.*row 0.*'f0'"):
        load_feature_table(tmp_path / "nan.csv", "label", group="trial", drop=["note"])
    one = [line for line in text if ",happy," in line or line == text[0]]
    (tmp_path / "one.csv").write_text("\n".join(one) + "\n")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_feature_table(tmp_path / "one.csv", "label", group="trial", drop=["note"])
    with pytest.raises(DataError, match="cannot be read"):
        load_feature_table(tmp_path / "missing.csv", "label")
    with pytest.raises(DataError) as info:
        load_feature_table(path, "label")
    assert "\n" not in str(info.value)


def test_eye_state_csv_is_a_feature_table(eye_state_csv: Path) -> None:
    ds = load_feature_table(eye_state_csv, "class")
    assert ds.X.shape == (14980, 14)
    assert ds.classes == ["0", "1"]
    assert ds.X.max() > 1e5  # the real glitch rows are kept as they are


def test_deap_quadrants_channels_and_baseline(tmp_path: Path) -> None:
    write_deap_file(tmp_path / "s01.dat", n_trials=4, seed=0)
    write_deap_file(tmp_path / "s02.dat", n_trials=4, seed=1)
    data, labels = read_deap_file(tmp_path / "s01.dat")  # old numpy names, latin1
    assert data.shape == (4, 40, 384 + 1024) and labels.shape == (4, 4)
    ds = load_deap(tmp_path, "default")
    assert ds.meta["files"] == ["s01.dat", "s02.dat"]
    assert sorted(set(ds.y.tolist())) == ["HVHA", "HVLA", "LVHA", "LVLA"]
    assert ds.groups is not None and len(set(ds.groups.tolist())) == 8
    assert ds.subjects is not None and sorted(set(ds.subjects.tolist())) == ["s01", "s02"]
    # 8 s after the 3 s baseline, 4 s windows every 2 s -> 3 windows per trial
    assert ds.n_rows == 8 * 3
    assert ds.meta["n_rejected_windows"] == 0
    emo = load_deap(tmp_path, "default", labels="emotion", subjects=["s02"])
    assert sorted(set(emo.y.tolist())) == ["happy", "relaxing", "sad", "tense"]
    assert emo.n_rows == 12


class _Seen(Exception):
    pass


def test_deap_picks_epoc_channels_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models import datasets

    path = write_deap_file(tmp_path / "s01.dat", n_trials=4)
    seen: list[np.ndarray] = []

    def spy(trials, preset, **_options):  # type: ignore[no-untyped-def]
        seen.extend(t.data for t in trials)
        raise _Seen

    data, _ = read_deap_file(path)
    monkeypatch.setattr(datasets, "from_trials", spy)
    with pytest.raises(_Seen):
        datasets.load_deap(tmp_path, "default")
    assert len(seen) == 4
    af4 = DEAP_CHANNELS.index("AF4")
    # EPOC order ends with AF4; the baseline (first 384 samples) is gone
    np.testing.assert_allclose(seen[0][:, -1], data[0, af4, 384:])
    o1 = DEAP_CHANNELS.index("O1")
    np.testing.assert_allclose(seen[0][:, 6], data[0, o1, 384:])


def test_deap_threshold_is_five() -> None:
    assert deap_quadrant(5.0, 5.0) == "HVHA"
    assert deap_quadrant(4.99, 5.0) == "LVHA"
    assert deap_quadrant(9.0, 1.0) == "HVLA"
    assert deap_quadrant(1.0, 4.9) == "LVLA"


def test_deap_refuses_code_and_junk(tmp_path: Path) -> None:
    write_malicious_pickle(tmp_path / "s01.dat")
    with pytest.raises(DataError, match=r"refused: global .* is not allowed"):
        load_deap(tmp_path)
    (tmp_path / "s01.dat").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"s01\.dat refused"):
        load_deap(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"holds no sNN\.dat"):
        load_deap(empty)
    with pytest.raises(DataError, match="labels must be 'quadrant' or 'emotion'"):
        load_deap(tmp_path, labels="valence")


def test_from_trials_skips_short_and_rejects_bad(tmp_path: Path) -> None:
    trials = simulated_trials(n_per_state=1, trial_s=8.0, rest_s=0.0)
    short = LabelledTrial(data=trials[0].data[:200], label="happy", trial_id="short", subject="sim01", sfreq_hz=128.0)
    ds = from_trials([*trials, short], "default")
    assert ds.meta["skipped_trials"][0]["trial_id"] == "short"
    assert set(ds.groups.tolist()) == {t.trial_id for t in trials}  # type: ignore[union-attr]
    assert ds.X.shape[1] == len(ds.feature_names)
    bad = trials[1].data.copy()
    bad[10, 3] = np.nan
    with pytest.raises(DataError, match=r"trial 'x'.*finite"):
        from_trials([LabelledTrial(data=bad, label="sad", trial_id="x", subject="s", sfreq_hz=128.0)], "default")
    with pytest.raises(DataError, match="sfreq must be 128 Hz, got 256"):
        from_trials([LabelledTrial(data=bad, label="sad", trial_id="y", subject="s", sfreq_hz=256.0)], "default")
    with pytest.raises(DataError, match="unknown feature preset"):
        from_trials(trials, "fancy")


def test_window_shorter_than_a_frame_is_refused() -> None:
    from processing.presets import get_preset

    with pytest.raises(DataError, match="shorter than a frame"):
        replace(get_preset("default"), name="tiny", window_s=0.5)


def test_trial_features_are_computed_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import processing.pipeline as pipeline
    from tests.support.models_data import shuffled_trial_labels

    trials = simulated_trials(n_per_state=1, trial_s=8.0)
    first = from_trials(trials, "default", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    calls = {"n": 0}
    real = pipeline.segment_features

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "segment_features", counting)
    again = from_trials(trials, "default", cache_dir=tmp_path)
    assert calls["n"] == 0  # read back, not recomputed
    np.testing.assert_array_equal(again.X, first.X)
    assert (again.y == first.y).all() and (again.groups == first.groups).all() and again.meta == first.meta
    relabelled = from_trials(shuffled_trial_labels(trials, seed=3), "default", cache_dir=tmp_path)
    assert calls["n"] == len(trials) and len(list(tmp_path.glob("*.npz"))) == 2  # other labels: another key
    assert relabelled.n_rows == first.n_rows
