"""``duygu bench --markdown``: one table per benchmark module, ratio rows beside both
absolute values (no benchmark runs here, and nothing is timed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.commands.bench import _absolutes, _write_markdown


@pytest.mark.timeout(30)
def test_markdown_has_a_table_per_module_with_duygu_the_peer_and_the_ratio(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"")
    report = {
        "machine": {"cpu": "test cpu", "cores": 2, "system": "Linux", "python": "3.11",
                    "load_average_at_end": [1.0, 1.0, 1.0]},
        "command": "duygu bench --json out.json",
        "date": "2026-12-01 12:00 UTC",
        "results": [
            {"module": "bench_acquisition", "name": "lsl reader cpu at 1x: duygu/mne-lsl", "value": 0.25,
             "unit": "x", "target": "<= 0.5x", "ok": True, "duygu": 2.0, "peer": 8.0, "peer_name": "mne-lsl",
             "measure_unit": "% of a core"},
            {"module": "bench_gui", "name": "gui main-thread cpu at 30 FPS: duygu/pyqtgraph", "value": 0.5,
             "unit": "x", "target": "duygu <= 15% of a core", "ok": False, "duygu": 20.0, "peer": 40.0,
             "peer_name": "pyqtgraph", "measure_unit": "% of a core"},
            {"module": "bench_models", "name": "live update latency plot (PNG)", "value": 2.0,
             "unit": "classifiers", "target": None, "ok": None, "plot": str(plot)},
        ],
    }
    out = tmp_path / "BENCH.md"
    _write_markdown(report, str(out))
    text = out.read_text(encoding="utf-8")
    assert "`duygu bench --json out.json`" in text and "test cpu, 2 cores" in text
    assert text.count("### ") == 3
    assert ("| lsl reader cpu at 1x: duygu/mne-lsl | 2 % of a core | 8 % of a core (mne-lsl) | 0.25x | "
            "<= 0.5x | yes |") in text
    assert "| 0.5x | duygu <= 15% of a core | **no** |" in text
    assert "![bench_models](plot.png)" in text


@pytest.mark.timeout(30)
def test_console_line_of_a_ratio_row_names_both_values() -> None:
    row = {"duygu": 1.5, "peer": 3.0, "peer_name": "librosa", "measure_unit": "s"}
    assert _absolutes(row) == "  (duygu 1.5 s, librosa 3 s)"
    assert _absolutes({"value": 1.0}) == ""
