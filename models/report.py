"""A self-contained HTML report of an evaluation, with inline SVG confusion matrices.

No plotting library: the SVG is written here, so the report opens in any browser and
needs nothing installed.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from acquisition.settings import write_text_atomic
from models.evaluation import SPLIT_LABELS, EvaluationReport


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def confusion_svg(matrix: list[list[int]], classes: list[str], title: str = "", cell_px: int = 56) -> str:
    """An SVG heat map of a confusion matrix (rows: true class, columns: predicted).

    Cells are shaded by their share of the row (recall per class) and show the count.
    """
    n = len(classes)
    left, top = 90, 40
    width = left + n * cell_px + 20
    height = top + n * cell_px + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">',
             f"<title>{_esc(title)}</title>",
             f'<text x="{left}" y="16" font-weight="bold">{_esc(title)}</text>']
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            shade = round(255 - 200 * share)
            fill = f"rgb({shade},{shade},255)"
            x, y = left + j * cell_px, top + i * cell_px
            text_fill = "white" if share > 0.6 else "black"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_px}" height="{cell_px}" fill="{fill}" stroke="#888"/>')
            parts.append(f'<text x="{x + cell_px / 2}" y="{y + cell_px / 2 + 4}" text-anchor="middle" '
                         f'fill="{text_fill}">{count}</text>')
    for k, name in enumerate(classes):
        parts.append(f'<text x="{left - 6}" y="{top + k * cell_px + cell_px / 2 + 4}" text-anchor="end">{_esc(name)}</text>')
        cx = left + k * cell_px + cell_px / 2
        cy = top + n * cell_px + 14
        parts.append(f'<text x="{cx}" y="{cy}" text-anchor="middle">{_esc(name)}</text>')
    parts.append(f'<text x="{left + n * cell_px / 2}" y="{top + n * cell_px + 36}" text-anchor="middle" '
                 f'font-style="italic">predicted</text>')
    parts.append(f'<text x="12" y="{top + n * cell_px / 2}" font-style="italic" '
                 f'transform="rotate(-90 12 {top + n * cell_px / 2})" text-anchor="middle">true</text>')
    parts.append("</svg>")
    return "".join(parts)


def null_histogram_svg(null: list[float], observed: float, chance: float, width: int = 420, height: int = 160) -> str:
    """An SVG histogram of permutation accuracies with the observed accuracy marked."""
    bins = 20
    counts = [0] * bins
    for v in null:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    peak = max(counts) or 1
    left, bottom, plot_w, plot_h = 30, height - 30, width - 60, height - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11" role="img"><title>permutation null distribution</title>']
    bw = plot_w / bins
    for b, c in enumerate(counts):
        h = plot_h * c / peak
        parts.append(f'<rect x="{left + b * bw:.1f}" y="{bottom - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="#99a"/>')
    for value, colour, label in ((observed, "#c00", "observed"), (chance, "#333", "chance")):
        x = left + plot_w * min(max(value, 0.0), 1.0)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom - plot_h}" y2="{bottom}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{bottom - plot_h + (12 if label == "observed" else 26)}" fill="{colour}">{label}</text>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{bottom}" y2="{bottom}" stroke="black"/>')
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * tick
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{int(tick * 100)}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_report(report: EvaluationReport, title: str = "Duygu evaluation") -> str:
    """The whole HTML page for ``report``."""
    from models.registry import label_of

    rows = []
    for r in report.results:
        key = f"{r['classifier']} | {r['split']}"
        folds = report.fold_accuracies.get(key, [])
        fold_text = ", ".join(f"{100 * a:.1f}" for a in folds)
        rows.append(
            "<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in (
                label_of(r["classifier"]), SPLIT_LABELS.get(r["split"], r["split"]))) +
            "".join(f'<td class="n">{100 * r[k]:.2f}</td>' for k in ("accuracy", "balanced_accuracy", "precision", "recall", "f1")) +
            f'<td class="n">{r["mcc"]:.3f}</td><td class="n">{len(folds)}</td><td>{_esc(fold_text)}</td></tr>'
        )
    if report.p_value is not None:
        chance_text = (f"Chance level {100 * report.chance:.2f} %: mean accuracy of {len(report.null_accuracies)} label "
                       f"permutations of <b>{_esc(report.reference[0])}</b> on split <b>{_esc(report.reference[1])}</b>. "
                       f"Observed {100 * report.observed:.2f} %, permutation p = {report.p_value:.3g}.")
        histogram = null_histogram_svg(report.null_accuracies, report.observed, report.chance)
    else:
        chance_text = f"Chance level {100 * report.chance:.2f} %: majority-class rate (no permutations were run)."
        histogram = ""
    if report.leakage_gap is not None:
        per = ", ".join(f"{_esc(k)} {100 * v:+.1f}" for k, v in report.leakage_by_classifier.items())
        gap_text = (f"<p>Leakage gap (random k-fold minus grouped k-fold accuracy, mean over classifiers): "
                    f"<b>{100 * report.leakage_gap:+.2f} points</b> ({per}).</p>")
    else:
        gap_text = "<p>Leakage gap: not measured by this protocol (run <code>--protocol grouped</code>).</p>"
    plots = "".join(
        "<figure>" + confusion_svg(r["confusion"], report.classes, r["classifier"] + " / " + r["split"]) + "</figure>"
        for r in report.results
    )
    params = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(json.dumps(v))}</td></tr>" for k, v in report.chosen_params.items() if any(v)
    )
    ds = report.dataset
    warnings = ("<h2>Warnings</h2>\n<ul>" + "".join(f"<li>{_esc(w)}</li>" for w in report.warnings) + "</ul>"
                if report.warnings else "")
    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 3px 8px; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>Protocol <b>{_esc(report.protocol)}</b>; {ds.get('rows')} rows, {ds.get('features')} features,
classes {_esc(json.dumps(ds.get('class_counts')))}, groups {ds.get('groups')}, subjects {ds.get('subjects')},
source {_esc(ds.get('source'))}, preset {_esc(ds.get('preset'))}; seed {report.random_state};
data hash <code>{_esc(str(ds.get('hash'))[:16])}</code>; {report.elapsed_s:.1f} s; written {created}.</p>
{warnings}
<h2>Results (%)</h2>
<table><tr><th>Model</th><th>Split</th><th>Accuracy</th><th>Balanced acc.</th><th>Precision</th><th>Recall</th>
<th>F1</th><th>MCC</th><th>Folds</th><th>Fold accuracies</th></tr>
{''.join(rows)}</table>
<h2>Chance and leakage</h2>
<p>{chance_text}</p>{histogram}
{gap_text}
<h2>Confusion matrices</h2>
<p>Rows: true class; columns: predicted; shade: share of the row. Out-of-fold predictions of all folds pooled.</p>
{plots}
<h2>Hyper-parameters chosen by the inner CV (per fold)</h2>
<table><tr><th>Classifier | split</th><th>Chosen</th></tr>{params}</table>
</body></html>
"""


def write_report(report: EvaluationReport, path: str | Path, title: str = "Duygu evaluation") -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8)."""
    return write_text_atomic(path, render_report(report, title))
