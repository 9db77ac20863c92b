"""``duygu record`` and ``duygu sessions list|export`` through the real entry point."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.simulated import EpocSimulator
from acquisition.store.sqlite import SessionStore
from app.cli import main
from tests.support.store_data import fill_session


def test_record_csv_writes_header_and_exact_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec.csv"
    assert main(["record", "--source", "simulated:5", "--seconds", "1", "--out", str(out),
                 "--json", str(tmp_path / "c.json")]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "time," + ",".join(EPOC_CHANNELS)
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table.shape == (128, 15)
    assert np.all(np.diff(table[:, 0]) > 0)
    # the rows are a contiguous stretch of the simulator's deterministic output
    ref = EpocSimulator(5).generate(2000)
    start = int(np.argmin(np.abs(ref[:, 0] - table[0, 1])))
    np.testing.assert_allclose(table[:, 1:], ref[start : start + 128], atol=1e-4)
    counters = json.loads((tmp_path / "c.json").read_text())
    assert counters["samples_written"] == 128 and counters["lost"] == 0
    assert counters["received"] >= 128 and "interpolated" in counters
    assert "received" in capsys.readouterr().out


@pytest.mark.timeout(10)
def test_csv_rows_are_what_numpy_savetxt_writes() -> None:
    """The recorder formats a chunk in one operation; the text is byte for byte savetxt's,
    for ordinary values, NaN, signed zero, huge values and negative times."""
    import io

    from acquisition.store.recorder import csv_rows

    rng = np.random.default_rng(3)
    data = 4200 + 30 * rng.standard_normal((257, 14))
    data[3, 4], data[5, 5], data[6, 6], data[7, 7] = np.nan, 3.4e38, -0.0, 1e-12
    times = np.concatenate([[-1.5], 12345.678 + np.arange(256) / 128])
    ref = io.StringIO()
    np.savetxt(ref, np.column_stack([times, data]), delimiter=",", fmt=["%.6f"] + ["%.9g"] * 14)
    assert csv_rows(times, data) == ref.getvalue()
    assert csv_rows(times[:0], data[:0]) == ""


def test_record_into_store_then_list_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "lab.sqlite"
    assert main(["record", "--source", "simulated:2", "--seconds", "1.5", "--store", str(store_path),
                 "--participant", "P07", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["samples_written"] == 192 and report["session_id"] == 1
    with SessionStore(store_path, readonly=True) as store:
        info = store.session(1)
        assert (info.status, info.participant, info.source, info.n_samples) == ("completed", "P07", "simulated:2", 192)
        _, _, idx = store.eeg(1)
        np.testing.assert_array_equal(np.diff(idx), 1)
    capsys.readouterr()

    assert main(["sessions", "list", "--store", str(store_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    (row,) = listed["sessions"]
    assert row["id"] == 1 and row["status"] == "completed" and row["eeg_seconds"] == 1.5
    assert {"participant", "protocol", "source", "start", "end", "trials"} <= set(row)
    assert main(["sessions", "list", "--store", str(store_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["id", "participant", "protocol"] and table[1].split()[:2] == ["1", "P07"]

    assert main(["sessions", "export", "1", "--format", "bids", "--out", str(tmp_path / "b"),
                 "--store", str(store_path)]) == 0
    assert (tmp_path / "b" / "sub-P07" / "eeg" / "sub-P07_task-listening_eeg.edf").stat().st_size > 0
    assert main(["sessions", "export", "1", "--format", "csv", "--out", str(tmp_path / "c"),
                 "--store", str(store_path)]) == 0
    assert len((tmp_path / "c" / "eeg.csv").read_text().splitlines()) == 193


def test_default_store_is_in_the_user_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "list"]) == 0  # no store yet: an empty listing, not an error
    assert "no sessions" in capsys.readouterr().out
    store_path = Path(os.environ["DUYGU_DATA_DIR"]) / "duygu.sqlite"
    with SessionStore(store_path) as store:
        fill_session(store, participant="P03", seconds=1, trials=())
    assert main(["sessions", "list", "--json", str(tmp_path / "l.json")]) == 0
    assert [s["participant"] for s in json.loads((tmp_path / "l.json").read_text())["sessions"]] == ["P03"]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "errors are one line"
    return err


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "lab.sqlite"
    assert main(["record", "--source", "simulated", "--seconds", "1", "--store", str(store_path),
                 "--participant", "Jane Doe"]) == 1
    assert "participant id must be a pseudonymous code" in _error(capsys)
    assert not store_path.exists()  # refused before anything was created
    with pytest.raises(SystemExit) as exc:
        main(["record", "--seconds", "1", "--out", "a.csv", "--store", str(store_path)])
    assert exc.value.code == 2
    capsys.readouterr()
    assert main(["record", "--source", "nonsense:1", "--seconds", "1", "--out", str(tmp_path / "x.csv")]) == 1
    assert "unknown source spec" in _error(capsys)

    with SessionStore(store_path) as store:
        fill_session(store, seconds=1)
    assert main(["sessions", "export", "9", "--out", str(tmp_path / "e"), "--store", str(store_path)]) == 1
    assert _error(capsys) == f"duygu: error: unknown session id 9 in store {store_path}"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert main(["sessions", "export", "1", "--out", str(busy), "--store", str(store_path)]) == 1
    assert "is not empty" in _error(capsys)
    assert main(["sessions", "list", "--store", str(tmp_path / "nope.sqlite")]) == 1
    assert "does not exist" in _error(capsys)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"definitely not sqlite" * 100)
    assert main(["sessions", "list", "--store", str(junk)]) == 1
    assert "not a Duygu session store" in _error(capsys)
    assert main(["record", "--source", "simulated", "--seconds", "1", "--store", str(junk)]) == 1
    assert "not a Duygu session store" in _error(capsys)
    assert junk.read_bytes() == b"definitely not sqlite" * 100  # untouched
    # the store with real data was never damaged by any of this
    assert sqlite3.connect(store_path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_record_counts_in_json_have_units(tmp_path: Path) -> None:
    assert main(["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(tmp_path / "a.csv"),
                 "--json", str(tmp_path / "a.json")]) == 0
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["seconds_recorded"] == pytest.approx(64 / SFREQ_HZ)
