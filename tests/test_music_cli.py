"""``duygu music features|evaluate|train|predict`` through the real entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main
from processing import audio
from tests.support.music_data import BAD_FOLDER_EXPECTED, write_bad_folder

# the session fixtures music_library_dir / music_library, shared by the music test modules
pytest_plugins = ("tests.support.music_fixtures",)


def test_features_batch_reports_bad_files_and_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_bad_folder(tmp_path / "batch")
    out = tmp_path / "features.json"
    assert main(["music", "features", str(folder), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    records = {Path(r["path"]).name: r for r in json.loads(out.read_text())}
    assert set(records) == set(BAD_FOLDER_EXPECTED)
    for name, expected in BAD_FOLDER_EXPECTED.items():
        assert ("error" in records[name]) == (expected == "error")
        if expected == "error":
            assert f"{name}: error:" in captured.err
        if expected == "warning":
            assert f"{name}: warning:" in captured.err
    assert "analysed 5 of 7 file(s); 2 failed" in captured.err
    good = records["good.ogg"]
    assert {"path", "duration_s", "tempo_bpm", "tempo_estimate_bpm", "tempo_confidence", "tempo_status",
            "mfcc_01_mean", "chroma_A_std", "rms_mean"} <= set(good)
    assert good["duration_s"] == pytest.approx(6.0, abs=0.01)
    assert good["tempo_bpm"] == pytest.approx(120.0, rel=0.03) and good["tempo_status"] == "ok"
    assert records["short_1s.wav"]["tempo_bpm"] is None and records["short_1s.wav"]["tempo_status"] == "too short"
    table = {line.split()[0]: line for line in captured.out.splitlines()[1:]}
    assert f"{good['tempo_bpm']:.1f} ({good['tempo_confidence']:.2f})" in table["good.ogg"]  # tempo and confidence
    assert "too short" in table["short_1s.wav"] and "no onsets" in table["silent.wav"]


def test_features_of_only_bad_files_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("text")
    assert main(["music", "features", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"duygu: error: none of the 1 file(s) under {str(tmp_path)!r} could be analysed"
    assert main(["music", "features", str(tmp_path / "missing")]) == 1
    assert "neither a file nor a folder" in capsys.readouterr().err


@pytest.mark.timeout(240)
def test_features_table_feeds_evaluate_and_library_train_predict(music_library_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "features.csv"
    assert main(["music", "features", str(music_library_dir), "--csv", str(table), "--json", "-"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 16 and all(r["label"] == Path(r["path"]).parent.name for r in listed)
    header = table.read_text().splitlines()[0].split(",")
    assert header[:2] == ["label", "group"] and header[2:] == audio.summary_feature_names()

    result_json = tmp_path / "eval.json"
    assert main(["music", "evaluate", "--features", str(table), "--label", "label", "--classifiers", "lda",
                 "--json", str(result_json)]) == 0
    result = json.loads(result_json.read_text())
    assert set(result) == {"protocol", "chance", "results", "leakage_gap", "dataset"}
    assert [r["split"] for r in result["results"]] == ["grouped", "random"]
    assert "roc_auc" in result["results"][0] and "chance:" in capsys.readouterr().out

    model = tmp_path / "music.skops"
    assert main(["music", "train", str(music_library_dir), "--classifier", "lda", "--segment-s", "6",
                 "--hop-s", "3", "--out", str(model)]) == 0
    assert "wrote" in capsys.readouterr().out
    preds = tmp_path / "pred.json"
    assert main(["music", "predict", str(music_library_dir / "tense"), "--model", str(model),
                 "--json", str(preds)]) == 0
    rows = json.loads(preds.read_text())
    assert len(rows) == 4 and sum(r["label"] == "tense" for r in rows) >= 3


@pytest.mark.timeout(180)
def test_cnn_train_predict_and_evaluate_on_a_scheduler(music_library_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from dask.distributed import LocalCluster

    model = tmp_path / "music.cnn"
    assert main(["music", "train", str(music_library_dir), "--classifier", "cnn", "--epochs", "3", "--segment-s", "6",
                 "--hop-s", "3", "--out", str(model)]) == 0
    assert "CNN on log-mel patches" in capsys.readouterr().out
    preds = tmp_path / "pred.json"
    assert main(["music", "predict", str(music_library_dir / "happy"), "--model", str(model), "--json", str(preds)]) == 0
    rows = json.loads(preds.read_text())
    assert len(rows) == 4 and all(abs(sum(r["probabilities"].values()) - 1.0) < 1e-9 for r in rows)

    # --jobs and --scheduler as for 'duygu evaluate': the same result from a dask cluster
    table = tmp_path / "features.csv"
    assert main(["music", "features", str(music_library_dir), "--csv", str(table), "--json", "-"]) == 0
    capsys.readouterr()
    argv = ["music", "evaluate", "--features", str(table), "--label", "label", "--classifiers", "lda,logreg",
            "--permutations", "2"]
    local, parallel, remote = tmp_path / "local.json", tmp_path / "parallel.json", tmp_path / "remote.json"
    assert main([*argv, "--json", str(local)]) == 0
    assert main([*argv, "--jobs", "2", "--json", str(parallel)]) == 0
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1", protocol="tcp",
                      dashboard_address=None) as cluster:
        assert main([*argv, "--scheduler", cluster.scheduler_address, "--json", str(remote)]) == 0
    assert json.loads(local.read_text()) == json.loads(parallel.read_text()) == json.loads(remote.read_text())
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "duygu: error: scheduler 'tcp://127.0.0.1:1' cannot be reached")


@pytest.mark.timeout(120)
def test_evaluate_prints_progress_lines_with_an_eta_when_stderr_is_not_a_terminal(
        music_library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["music", "evaluate", str(music_library_dir), "--classifiers", "lda,knn", "--segment-s", "6",
                 "--hop-s", "3", "--max-duration-s", "6", "--permutations", "2",
                 "--permutation-reference", "knn"]) == 0
    err = capsys.readouterr().err.splitlines()  # captured: not a terminal, so lines, no bar
    evaluate = [line for line in err if line.startswith("music evaluate grouped: ")]
    # a first line before any unit has finished, and a last one when all are done
    # (2 classifiers x 2 splits x 4 folds + 2 permutations = 18 units)
    assert evaluate[0] == "music evaluate grouped: 0/18 work units (0%), 0 s elapsed, ETA unknown"
    assert re.fullmatch(r"music evaluate grouped: 18/18 work units \(100%\), \d+ s elapsed, ETA 0 s", evaluate[-1])
    assert err.index(evaluate[0]) > max(i for i, line in enumerate(err) if line.startswith("music analyse: 16/16 "))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["music", "evaluate"], "give either a library DIR or --features"),
        (["music", "evaluate", "--features", "x.csv"], "--features needs --label"),
        (["music", "evaluate", "{lib}", "--protocol", "nope"], "protocol must be one of"),
        (["music", "evaluate", "{lib}", "--classifiers", "cnn,nope"], "classifier must be one of"),
        (["music", "train", "{lib}", "--classifier", "cnn", "--epochs", "-1", "--out", "m.cnn"], "--epochs must be >= 1"),
        (["music", "train", "{lib}", "--classifier", "lstm", "--epochs", "0", "--out", "m.pt"], "--epochs must be >= 1"),
        (["music", "predict", "{lib}", "--model", "{lib}/happy/bells.wav"], "not a skops bundle"),
    ],
)
def test_bad_music_arguments_give_one_line_errors(argv: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "lib"
    for label in ("happy", "sad"):
        (lib / label).mkdir(parents=True)
        (lib / label / "bells.wav").write_bytes(b"not audio")
    argv = [a.replace("{lib}", str(lib)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("duygu: error: ") and message in err[-1]
