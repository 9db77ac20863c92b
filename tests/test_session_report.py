"""duygu sessions report: per-trial intended/perceived/reported/decoded emotion and agreement."""

from __future__ import annotations

import json
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from acquisition.errors import ModelFormatError, StoreError
from acquisition.store.sqlite import SessionStore
from app.cli import main
from models.session_report import SOURCES, build_session_report
from tests.support.session_report import (
    ReportSession,
    build_models_once,
    train_eeg,
    train_music,
    write_music_library,
    write_session,
)

#: reported labels of the 8 trials; trial k plays the bells stimulus k % 4, whose intended
#: emotions are happy, sad, relaxing, tense; one trial is left unlabelled
REPORTED: list[str | None] = ["happy", "sad", "sad", "tense", "happy", "relaxing", None, "tense"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """One stored session and two small models, shared by the xdist workers of a run."""
    if worker_id == "master":
        return build_models_once(tmp_path_factory.mktemp("session_report"), REPORTED)
    return build_models_once(tmp_path_factory.getbasetemp().parent / "session-report", REPORTED)


def _kappa(a: list[str], b: list[str]) -> float:
    n = len(a)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[c] * cb[c] for c in set(a) | set(b)) / n**2
    return (po - pe) / (1 - pe)


def _independent_perceived(env: dict[str, Any], session: ReportSession, tmp_path: Path) -> dict[str, dict[str, float]]:
    """Each stimulus excerpt cut with soundfile into its own file, then the music model on it."""
    from models.music import MusicModel

    model = MusicModel.load(env["music"])
    out = {}
    for stim in session.protocol["stimuli"]:
        data, sfreq = sf.read(stim["path"], dtype="float32")
        a = round(stim["start_s"] * sfreq)
        piece = tmp_path / f"{stim['id']}.wav"
        sf.write(piece, data[a:a + round(session.protocol["music_s"] * sfreq)], sfreq, subtype="FLOAT")  # no 16-bit noise
        out[stim["id"]] = model.predict_file(piece)
    return out


def _independent_decoded(env: dict[str, Any], session: ReportSession) -> dict[int, str]:
    """The bundle on models.datasets.from_trials of the session's labelled trials, mean per trial."""
    from models.bundle import load_bundle
    from models.datasets import from_trials

    bundle = load_bundle(env["eeg"])
    with SessionStore(session.store_path, readonly=True) as store:
        ds = from_trials(store.labelled_trials(session_ids=[session.session_id]))
    proba = bundle.predict_proba(ds.X)
    out = {}
    for g in np.unique(ds.groups):
        mean = proba[ds.groups == g].mean(axis=0)
        out[int(str(g).split(":")[1])] = bundle.classes[int(np.argmax(mean))]
    return out


@pytest.mark.timeout(90)
def test_report_every_trial_four_sources_and_counts(env: dict[str, Any], tmp_path: Path) -> None:
    session: ReportSession = env["session"]
    with SessionStore(session.store_path, readonly=True) as store:
        report = build_session_report(store, session.session_id, eeg_model=env["eeg"], music_model=env["music"])
    assert report.sources == list(SOURCES) and report.absent == {}
    assert [r.trial_id for r in report.trials] == session.trial_ids
    assert [r.stimulus_id for r in report.trials] == session.stimulus_ids
    assert [r.intended for r in report.trials] == session.intended
    assert [r.reported for r in report.trials] == REPORTED
    # perceived: the exact excerpt (start_s, music_s) cut independently gives the same probabilities
    perceived = _independent_perceived(env, session, tmp_path)
    for r in report.trials:
        assert r.stimulus_path and Path(r.stimulus_path).is_file() and r.start_s == 1.0 and r.music_s == 8.0
        assert r.perceived_proba is not None and r.perceived_error is None
        expect = perceived[r.stimulus_id]
        assert set(r.perceived_proba) == set(expect)
        assert max(abs(r.perceived_proba[c] - expect[c]) for c in expect) < 0.05
        assert r.perceived == max(expect, key=expect.__getitem__)
    # decoded: windows kept and counted; the labelled trials agree with from_trials + the bundle
    decoded = _independent_decoded(env, session)
    for r in report.trials:
        assert r.decoded is not None and r.decoded_error is None
        assert r.n_windows >= 1 and r.n_rejected >= 0 and r.n_samples == 8 * 128
        assert abs(sum(r.decoded_proba.values()) - 1.0) < 1e-9
        if r.trial_id in decoded:
            assert r.decoded == decoded[r.trial_id]
    assert len(decoded) == sum(1 for x in REPORTED if x is not None)
    # the simulated participant follows the reported state; the bundle was trained on another
    # session of the same simulated participant
    hits = sum(r.decoded == r.reported for r in report.trials if r.reported)
    assert hits >= 5
    # six pairs, counts computed here independently
    assert [(a.rows, a.columns) for a in report.agreements] == [
        (a, b) for i, a in enumerate(SOURCES) for b in SOURCES[i + 1:]]
    for ag in report.agreements:
        pairs = [(r.label(ag.rows), r.label(ag.columns)) for r in report.trials]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        counts = Counter(pairs)
        assert ag.n == len(pairs) == sum(map(sum, ag.matrix))
        for i, ci in enumerate(ag.classes):
            for j, cj in enumerate(ag.classes):
                assert ag.matrix[i][j] == counts[(ci, cj)], (ag.rows, ag.columns, ci, cj)
        agree = sum(a == b for a, b in pairs)
        assert ag.rate == pytest.approx(agree / len(pairs))
        a_lab, b_lab = [a for a, _ in pairs], [b for _, b in pairs]
        assert ag.kappa == pytest.approx(_kappa(a_lab, b_lab))
    ir = report.agreement("intended", "reported")
    assert ir.n == 7 and ir.rate == pytest.approx(5 / 7)
    assert any("OTHER sessions" in n for n in report.notes)
    assert not any("WARNING" in n for n in report.notes)
    assert any("no reported label" in n for n in report.notes)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_cli_html_and_json(env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session: ReportSession = env["session"]
    html_out, json_out = tmp_path / "report.html", tmp_path / "report.json"
    assert main(["sessions", "report", str(session.session_id), "--store", str(session.store_path),
                 "--out", str(html_out), "--eeg-model", str(env["eeg"]), "--music-model", str(env["music"]),
                 "--json", str(json_out)]) == 0
    printed = capsys.readouterr().out
    assert f"session {session.session_id}: 8 trials" in printed and str(html_out) in printed
    page = _Page()
    page.feed(html_out.read_text(encoding="utf-8"))
    page.close()
    assert page.tags["svg"] == 6 and page.tags["figure"] == 6
    assert page.tags["tr"] == 1 + 8 + 1 + 6  # trial table + agreement summary
    text = " ".join(page.text)
    for word in (*SOURCES, "Cohen's kappa", "OTHER sessions", "bells-tense"):
        assert word in text
    doc = json.loads(json_out.read_text())
    assert set(doc) == {"session", "sources", "absent", "classes", "models", "notes", "trials", "agreements",
                        "created"}
    assert doc["session"]["id"] == session.session_id and len(doc["trials"]) == 8
    assert {"intended", "perceived", "reported", "decoded", "n_windows", "n_rejected",
            "perceived_proba", "decoded_proba"} <= set(doc["trials"][0])
    assert {"rows", "columns", "classes", "matrix", "n", "rate", "kappa"} <= set(doc["agreements"][0])
    assert doc["models"]["eeg"]["classifier"] == "lda" and doc["models"]["music"]["classes"]


def test_missing_models_absent_sources(env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session: ReportSession = env["session"]
    out = tmp_path / "r.html"
    assert main(["sessions", "report", str(session.session_id), "--store", str(session.store_path),
                 "--out", str(out), "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["sources"] == ["intended", "reported"]
    assert set(doc["absent"]) == {"perceived", "decoded"}
    assert [(a["rows"], a["columns"]) for a in doc["agreements"]] == [("intended", "reported")]
    assert "perceived absent" in captured.err and "decoded absent" in captured.err
    text = out.read_text()
    assert text.count("<svg") == 1 and "no music model given" in text and "no EEG model given" in text
    with SessionStore(session.store_path, readonly=True) as store:
        only_music = build_session_report(store, session.session_id, music_model=env["music"])
    assert only_music.sources == ["intended", "perceived", "reported"]
    assert all(r.decoded is None and r.n_windows == 0 for r in only_music.trials)


@pytest.mark.timeout(90)
def test_class_name_mismatch_reported(env: dict[str, Any], tmp_path: Path) -> None:
    lib = write_music_library(tmp_path / "lib", styles=("organ", "plucks"),
                              folders={"happy": "happy", "sad": "sad", "tense": "aggressive"})
    model = train_music(lib, tmp_path / "other.skops")
    session: ReportSession = env["session"]
    with SessionStore(session.store_path, readonly=True) as store:
        report = build_session_report(store, session.session_id, music_model=model)
    assert report.classes["perceived"] == ["aggressive", "happy", "sad"]
    ag = report.agreement("intended", "perceived")
    assert ag.only_columns == ["aggressive"] and ag.only_rows == ["relaxing", "tense"]
    assert ag.n == 8 and set(ag.classes) == {"happy", "sad", "relaxing", "tense", "aggressive"}
    assert any("Class names differ" in n and "aggressive" in n for n in report.notes)


@pytest.mark.timeout(90)
def test_training_session_warned(env: dict[str, Any], tmp_path: Path) -> None:
    from models.bundle import save_bundle, train_bundle
    from models.datasets import from_trials

    session: ReportSession = env["session"]
    with SessionStore(session.store_path, readonly=True) as store:
        bundle = train_bundle(from_trials(store.labelled_trials(session_ids=[session.session_id])), "lda")
        path = save_bundle(tmp_path / "self.skops", bundle.estimator, bundle.meta)
        report = build_session_report(store, session.session_id, eeg_model=path)
    assert report.models["eeg"]["training_data"]["same_data"] is True
    assert any(n.startswith("WARNING: the EEG model was trained on this very session") for n in report.notes)


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("duygu: error: ") and "\n" not in err, err
    return err


def test_bad_inputs_one_line_errors(env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session: ReportSession = env["session"]
    base = ["sessions", "report", str(session.session_id), "--store", str(session.store_path),
            "--out", str(tmp_path / "r.html")]
    assert "unknown session id 999" in _error(capsys, ["sessions", "report", "999", *base[3:]])
    assert "does not exist" in _error(capsys, [*base, "--music-model", str(tmp_path / "missing.skops")])
    assert "not a music model" in _error(capsys, [*base, "--music-model", str(env["eeg"])])
    assert "is a music model" in _error(capsys, [*base, "--eeg-model", str(env["music"])])
    other = train_eeg(tmp_path / "other.skops", channels=["Fz", "Cz", "Pz"] + ["O1"] * 11)
    assert "trained on channels Fz,Cz,Pz" in _error(capsys, [*base, "--eeg-model", str(other)])
    assert "does not exist" in _error(capsys, [*base[:4], str(tmp_path / "none.sqlite"), *base[5:]])
    assert "is a directory; give a file name" in _error(capsys, [*base[:-1], str(tmp_path)])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write the report" in _error(capsys, [*base[:-1], str(blocker / "r.html")])
    assert not (tmp_path / "r.html").exists()
    with SessionStore(session.store_path, readonly=True) as store, pytest.raises(StoreError):
        build_session_report(store, 12345)
    with SessionStore(session.store_path, readonly=True) as store, pytest.raises(ModelFormatError):
        build_session_report(store, session.session_id, eeg_model=tmp_path / "nope.skops")


def test_unreadable_stimulus_is_reported_per_trial(env: dict[str, Any], tmp_path: Path) -> None:
    from tests.support.session_report import demo_protocol

    proto = demo_protocol()
    proto["stimuli"][1]["path"] = str(tmp_path / "gone.ogg")
    session = write_session(tmp_path / "s.sqlite", ["happy", "sad"], protocol=proto, trial_s=1.0)
    with SessionStore(session.store_path, readonly=True) as store:
        report = build_session_report(store, session.session_id, eeg_model=env["eeg"], music_model=env["music"])
    first, second = report.trials
    assert first.perceived is not None and second.perceived is None
    assert "gone.ogg" in (second.perceived_error or "")
    # 1 s trials are shorter than one EEG window: decoded unknown, said per trial
    assert first.decoded is None and "window" in (first.decoded_error or "")
    assert report.agreement("perceived", "reported").n == 1
    assert report.agreement("reported", "decoded").n == 0 and report.agreement("reported", "decoded").rate is None
    assert any("Perceived emotion unknown for 1 of 2" in n for n in report.notes)


@pytest.mark.timeout(90)
def test_fusion_dataset_evaluate_train_and_report(env: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from models.bundle import load_bundle
    from models.datasets import from_trials
    from models.fusion import FUSION_KIND, from_store, music_feature_names, stimulus_summary

    session: ReportSession = env["session"]
    with SessionStore(session.store_path, readonly=True) as store:
        fused = from_store(store)
        eeg = from_trials(store.labelled_trials())
    n_music = len(music_feature_names())
    assert fused.X.shape == (eeg.n_rows, eeg.X.shape[1] + n_music)
    np.testing.assert_array_equal(fused.X[:, :eeg.X.shape[1]], eeg.X)
    assert (fused.groups == eeg.groups).all() and (fused.subjects == eeg.subjects).all() and (fused.y == eeg.y).all()
    assert fused.feature_names[-n_music:] == music_feature_names()
    assert fused.meta["fusion"]["kind"] == FUSION_KIND and fused.meta["fusion"]["session_ids"] == [session.session_id]
    by_trial = dict(zip(session.trial_ids, session.protocol["stimuli"] * 2, strict=True))
    for g in np.unique(fused.groups):
        stim = by_trial[int(str(g).split(":")[1])]
        expect = stimulus_summary(stim["path"], stim["start_s"], session.protocol["music_s"])
        np.testing.assert_allclose(fused.X[fused.groups == g, -n_music:], np.tile(expect, ((fused.groups == g).sum(), 1)))
    balanced = write_session(tmp_path / "balanced.sqlite", ["happy", "sad", "relaxing", "tense"] * 2)
    # one stimulus per class: fused music columns identify it, and stimuli are kept apart,
    # so there is no honest grouped split (tests/test_models_honesty.py evaluates one that has)
    assert "class 'happy' has 1 stimulus, fewer than the 2 folds" in _error(
        capsys, ["evaluate", "--store", str(balanced.store_path), "--fuse-music", "--protocol", "grouped",
                 "--classifiers", "lda", "--permutations", "0"])
    base = ["--store", str(session.store_path), "--fuse-music"]
    model = tmp_path / "fused.skops"
    assert main(["train", *base, "--protocol", "none", "--out", str(model)]) == 0
    meta = load_bundle(model).meta
    assert meta["fusion"]["kind"] == FUSION_KIND and meta["n_features"] == fused.X.shape[1]
    capsys.readouterr()
    assert "--fuse-music needs --store" in _error(capsys, ["evaluate", "--features", "x.csv", "--label", "y",
                                                           "--fuse-music"])
    with SessionStore(session.store_path, readonly=True) as store:
        report = build_session_report(store, session.session_id, eeg_model=model)
    assert all(r.decoded is not None for r in report.trials)
    assert report.models["eeg"]["fusion"] == FUSION_KIND
    assert any("trained on this very session" in n for n in report.notes)
