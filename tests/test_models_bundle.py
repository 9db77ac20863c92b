"""Model bundles: skops round trip of every registry entry, refusals with one-line errors."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from acquisition.channels import EPOC_CHANNELS
from acquisition.errors import ModelFormatError
from models.bundle import (
    FORMAT,
    TRUSTED_TYPES,
    check_compatible,
    load_bundle,
    save_bundle,
    train_bundle,
)
from models.registry import FEATURE_CLASSIFIERS
from tests.support.models_data import synthetic_dataset


def _eeg_meta(ds_meta: dict) -> dict:  # type: ignore[type-arg]
    return {**ds_meta, "channels": list(EPOC_CHANNELS), "sfreq_hz": 128.0, "preset": "default"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", [*FEATURE_CLASSIFIERS, "auto"])
def test_every_registry_entry_round_trips(tmp_path: Path, name: str) -> None:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=6, effect=2.0)
    bundle = train_bundle(ds, name, protocol="grouped")
    path = save_bundle(tmp_path / f"{name}.skops", bundle.estimator, bundle.meta)
    back = load_bundle(path)
    np.testing.assert_allclose(back.predict_proba(ds.X), bundle.predict_proba(ds.X))
    assert back.classes == sorted(set(ds.y.tolist()))
    meta = back.meta
    assert meta["classifier"] == name
    assert meta["training_data"]["hash"] == ds.data_hash()
    assert {"scikit-learn", "skops", "numpy"} <= set(meta["versions"])
    assert meta["created"].endswith("+00:00")
    assert set(sio.get_untrusted_types(data=sio.dumps(back.estimator))) <= set(TRUSTED_TYPES)
    assert meta["protocol"] == "grouped" and meta["domain"] == ds.meta.get("domain") and meta["input"] == "features"
    if meta["inner_cv"] is not None:  # entries with a grid or calibration search on trial-grouped folds
        assert meta["inner_cv"]["grouped"] and meta["inner_cv"]["by"] == "trial"
    if name == "auto":
        assert meta["chosen_classifier"] in meta["best_params"]["classifier"]


@pytest.mark.timeout(120)
def test_raw_window_entries_bundle_or_refuse(tmp_path: Path) -> None:
    """The Riemannian pipeline reads raw windows and round-trips; EEGNet (torch) is refused."""
    from acquisition.errors import DataError
    from models.datasets import from_trials
    from tests.support.models_data import simulated_trials

    ds = from_trials(simulated_trials(n_per_state=2, trial_s=10.0), "default", keep_windows=True)
    assert ds.windows is not None and ds.windows.shape[1:] == (14, 512)
    bundle = train_bundle(ds, "riemann", protocol="grouped")
    back = load_bundle(save_bundle(tmp_path / "r.skops", bundle.estimator, bundle.meta))
    assert back.reads_windows and back.meta["domain"] == "epoc-raw"
    np.testing.assert_allclose(back.predict_proba(ds.windows), bundle.predict_proba(ds.windows))
    with pytest.raises(DataError, match="'eegnet' cannot be saved in a model bundle"):
        train_bundle(ds, "eegnet")
    with pytest.raises(DataError, match="reads raw EEG windows"):
        train_bundle(synthetic_dataset(n_trials=8), "riemann")


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=4, effect=2.0)
    bundle = train_bundle(ds, "lda")
    return save_bundle(tmp_path / "m.skops", bundle.estimator, _eeg_meta(bundle.meta))


def _rewrite(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(info.filename, zin.read(info.filename)))
    return dst


def test_channels_and_rate_must_match(saved: Path) -> None:
    assert load_bundle(saved, expect_channels=EPOC_CHANNELS, expect_sfreq_hz=128.0).meta["channels"] == list(EPOC_CHANNELS)
    other = tuple(reversed(EPOC_CHANNELS))
    with pytest.raises(ModelFormatError, match=r"trained on channels AF3,F7.*the source has AF4"):
        load_bundle(saved, expect_channels=other)
    with pytest.raises(ModelFormatError, match=r"trained at 128\.0 Hz, the source runs at 256 Hz"):
        load_bundle(saved, expect_sfreq_hz=256.0)


def test_feature_table_bundle_cannot_read_a_source(tmp_path: Path) -> None:
    ds = synthetic_dataset(n_trials=8, rows_per_trial=4)
    bundle = train_bundle(ds, "lda")
    with pytest.raises(ModelFormatError, match="trained on a feature table"):
        check_compatible(bundle, EPOC_CHANNELS, 128.0)


def test_tampered_payload_is_refused(saved: Path, tmp_path: Path) -> None:
    def flip(name: str, data: bytes) -> bytes:
        if name.endswith(".bin"):  # the model payload: change one byte, keep a valid zip
            inner = bytearray(data)
            inner[len(inner) // 2] ^= 0xFF
            return bytes(inner)
        return data

    bad = _rewrite(saved, tmp_path / "tampered.skops", flip)
    with pytest.raises(ModelFormatError, match="tampered with: the model checksum does not match"):
        load_bundle(bad)
    raw = bytearray(saved.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped byte in the archive itself
    (tmp_path / "flipped.skops").write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError) as info:
        load_bundle(tmp_path / "flipped.skops")
    assert "\n" not in str(info.value)


def test_foreign_files_are_refused(saved: Path, tmp_path: Path) -> None:
    (tmp_path / "text.skops").write_text("hello")
    with pytest.raises(ModelFormatError, match="not a skops bundle"):
        load_bundle(tmp_path / "text.skops")
    with pytest.raises(ModelFormatError, match="does not exist"):
        load_bundle(tmp_path / "none.skops")
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression().fit(np.eye(4), ["a", "b", "a", "b"])
    sio.dump(plain, tmp_path / "plain.skops")
    with pytest.raises(ModelFormatError, match="not a Duygu model bundle"):
        load_bundle(tmp_path / "plain.skops")
    with zipfile.ZipFile(tmp_path / "zip.skops", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ModelFormatError, match=r"not a readable skops file|damaged"):
        load_bundle(tmp_path / "zip.skops")


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.pipeline import Pipeline

    evil = Pipeline([("v", HashingVectorizer(preprocessor=hashlib.sha256))])
    payload = sio.dumps(evil)
    assert sio.get_untrusted_types(data=payload)
    outer = {"format": FORMAT, "format_version": 1, "meta": json.dumps({}), "payload": payload,
             "payload_sha256": hashlib.sha256(payload).hexdigest()}
    sio.dump(outer, tmp_path / "evil.skops")
    with pytest.raises(ModelFormatError, match=r"holds types Duygu does not trust: .*sha256"):
        load_bundle(tmp_path / "evil.skops")
