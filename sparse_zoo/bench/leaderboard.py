"""The leaderboard: one row per model from a results directory, as Markdown, CSV or HTML.

Columns (CSV names; the first five extend timm's results CSVs): ``model, top1, top1_err,
param_count`` (millions), ``img_size``, then ``method, sparsity, nonzero_params, baseline``
and per suite ``<suite>_robust`` (mean robust top-1 over its corruptions and
severities), ``<suite>_mce`` and ``<suite>_gain``. Accuracies and errors are in %.

- mCE: normalised by AlexNet's published errors for suites that have them (ImageNet-C);
  otherwise by the model's baseline (CE of the baseline = 100), blank without one.
- gain: the paper's relative gain of the mean robust accuracy over the baseline,
  (robust - robust_baseline) / robust_baseline, in %.
- baseline: ``--baseline MODEL`` for every row, or else the dense model of the same
  architecture (``resnet34_cifar_dense`` for ``resnet34_cifar_rigl_s50``), or the only
  dense model when there is exactly one.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics
from .models import _NAME_PATTERN
from .store import RunResults, latest_runs, read_results
from .suites import SUITES

BASE_COLUMNS = ("model", "top1", "top1_err", "param_count", "img_size", "method", "sparsity", "nonzero_params",
                "baseline")
FORMATS = ("md", "csv", "html")


@dataclass
class Leaderboard:
    rows: list[dict[str, object]]
    columns: list[str]
    suites: list[str]
    runs: dict[tuple[str, str], RunResults]
    baselines: dict[str, str | None]
    notes: list[str] = field(default_factory=list)

    def sorted_by(self, column: str | None) -> list[dict[str, object]]:
        """Rows sorted by ``column`` (descending; ascending for errors and mCE), blanks last."""
        column = column or (f"{self.suites[0]}_robust" if self.suites else "top1")
        if column not in self.columns:
            raise ValueError(f"unknown column {column!r}; valid: {', '.join(self.columns)}")
        ascending = column.endswith(("_err", "_mce")) or column in ("model", "method")
        present = [r for r in self.rows if r.get(column) not in (None, "")]
        blank = [r for r in self.rows if r.get(column) in (None, "")]
        return sorted(present, key=lambda r: r[column], reverse=not ascending) + blank


def _base_arch(architecture: str) -> str:
    match = _NAME_PATTERN.match(architecture)
    return match["arch"] if match else architecture


def _choose_baselines(infos: dict[str, dict], baseline: str | None) -> dict[str, str | None]:
    if baseline is not None:
        if baseline not in infos:
            raise ValueError(f"unknown baseline {baseline!r}; models in these results: {', '.join(sorted(infos))}")
        return {m: baseline for m in infos}
    dense = [m for m, info in infos.items() if info.get("method") == "dense"]
    out = {}
    for model, info in infos.items():
        same = [d for d in dense if _base_arch(infos[d].get("architecture", d)) ==
                _base_arch(info.get("architecture", model))]
        out[model] = same[0] if same else (dense[0] if len(dense) == 1 else None)
    return out


def _pct(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(100.0 * x, 2)


def build(results_dir: str | Path, baseline: str | None = None) -> Leaderboard:
    """Read every run under ``results_dir`` (latest config per model and suite) into leaderboard rows."""
    runs_all, problems = read_results(results_dir)
    runs = {(r.model, r.suite): r for r in latest_runs(runs_all)}
    if not runs:
        raise ValueError(f"no results under {results_dir!r} (expected <model>/<suite>-<hash>/config.json files)"
                         + (f"; problems: {'; '.join(problems)}" if problems else ""))
    models = sorted({m for m, _ in runs})
    suites = sorted({s for _, s in runs}, key=lambda s: (s not in SUITES, s))
    infos = {m: next(r.info for (mm, _), r in runs.items() if mm == m) for m in models}
    baselines = _choose_baselines(infos, baseline)
    columns = list(BASE_COLUMNS) + [f"{s}_{k}" for s in suites for k in ("robust", "mce", "gain")]
    rows = []
    for model in models:
        info = infos[model]
        clean = next((r.clean_accuracy for (m, _), r in sorted(runs.items()) if m == model
                      and r.clean_accuracy is not None), None)
        row: dict[str, object] = {
            "model": model, "top1": _pct(clean), "top1_err": _pct(None if clean is None else 1 - clean),
            "param_count": round(info.get("param_count", 0) / 1e6, 2), "img_size": info.get("img_size"),
            "method": info.get("method"), "sparsity": round(info.get("sparsity", 0.0), 4),
            "nonzero_params": info.get("nonzero_params"), "baseline": baselines[model] or ""}
        for suite in suites:
            row.update(_suite_columns(runs.get((model, suite)), runs.get((baselines[model], suite)), suite))
        rows.append(row)
    notes = [_describe_run(suite, [r for (m, s), r in runs.items() if s == suite]) for suite in suites]
    notes += [f"skipped unreadable results: {p}" for p in problems]
    stale = len(runs_all) - len(runs)
    if stale:
        notes.append(f"{stale} older run folder(s) with a different config were not used")
    return Leaderboard(rows, columns, suites, runs, baselines, notes)


def _describe_run(suite: str, runs: list[RunResults]) -> str:
    """What a suite's numbers rest on: data source, images per cell, cells, seed."""
    data = runs[0].config.get("data", {})
    where = data.get("path") or data.get("clean") or "?"
    source = "corrupted on the fly from" if data.get("source") == "onthefly" else "pre-rendered at"
    images = sorted({rec.n for run in runs for rec in run.records.values()})
    cells = max(sum(len(per) for per in run.table().values()) for run in runs)
    return (f"{suite}: {source} {where}; {'/'.join(map(str, images))} images per cell, {cells} corruption x "
            f"severity cells per model, seed {runs[0].config.get('seed')}.")


def _suite_columns(run: RunResults | None, base: RunResults | None, suite: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {f"{suite}_robust": None, f"{suite}_mce": None, f"{suite}_gain": None}
    table = run.table() if run else {}
    if not table:
        return out
    robust = metrics.mean_robust_accuracy(table)
    out[f"{suite}_robust"] = _pct(robust)
    reference = SUITES[suite].reference if suite in SUITES else None
    base_table = base.table() if base else {}
    if reference == "alexnet":
        out[f"{suite}_mce"] = _pct(metrics.mce(table, metrics.alexnet_reference()))
    elif base_table and all(s in base_table.get(c, {}) for c, per in table.items() for s in per):
        out[f"{suite}_mce"] = _pct(metrics.mce(table, metrics.errors(base_table)))
    if base_table:
        common = {c: {s: a for s, a in per.items() if s in base_table.get(c, {})} for c, per in table.items()}
        common = {c: per for c, per in common.items() if per}
        if common:
            base_robust = metrics.mean_robust_accuracy({c: {s: base_table[c][s] for s in per}
                                                        for c, per in common.items()})
            out[f"{suite}_gain"] = _pct((metrics.mean_robust_accuracy(common) - base_robust) / base_robust)
    return out


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"
    return str(value)


def to_markdown(board: Leaderboard, sort: str | None = None) -> str:
    rows = board.sorted_by(sort)
    lines = ["| " + " | ".join(board.columns) + " |", "|" + "|".join("---" for _ in board.columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in board.columns) + " |" for r in rows]
    return "\n".join(lines + [f"\n{n}" for n in board.notes])


def to_csv(board: Leaderboard, sort: str | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=board.columns, lineterminator="\n")
    writer.writeheader()
    for row in board.sorted_by(sort):
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in board.columns})
    return buf.getvalue()


_SORT_JS = """
document.querySelectorAll('table.board th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const asc = th.dataset.asc = th.dataset.asc === '1' ? '0' : '1';
  const key = r => { const t = r.cells[col].innerText; const v = parseFloat(t);
                     return t === '-' ? null : (isNaN(v) ? t : v); };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (asc === '1' ? 1 : -1); });
  rows.forEach(r => body.appendChild(r)); }));
"""
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table.board { border-collapse: collapse; font-size: 14px; }
table.board th, table.board td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
table.board th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
table.board td:first-child, table.board th:first-child { text-align: left; }
td.pos { color: #1a7f37; } td.neg { color: #c62828; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
.notes { color: #555; font-size: 13px; }
"""


def to_html(board: Leaderboard, figures: Sequence[tuple[str, bytes]] = (), sort: str | None = None,
            title: str = "sparse-zoo robustness leaderboard") -> str:
    """A self-contained page: the sortable table (click a header) and the PNG figures inlined."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in board.columns)
    body = []
    for row in board.sorted_by(sort):
        cells = []
        for c in board.columns:
            v = row.get(c)
            cls = ' class="pos"' if c.endswith("_gain") and isinstance(v, float) and v > 0 else \
                ' class="neg"' if c.endswith("_gain") and isinstance(v, float) and v < 0 else ""
            cells.append(f"<td{cls}>{html.escape(_cell(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    figs = "".join(f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,'
                   f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(cap)}</figcaption></figure>'
                   for cap, png in figures)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in _explanations(board) + board.notes)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<table class='board'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<ul class='notes'>{notes}</ul>{figs}<script>{_SORT_JS}</script></body></html>")


def _explanations(board: Leaderboard) -> list[str]:
    return ["top1: clean top-1 (%); <suite>_robust: mean top-1 over the suite's corruptions and severities (%).",
            "<suite>_mce: mean corruption error (%), normalised by AlexNet's published errors for ImageNet-C, "
            "otherwise by the row's baseline (baseline = 100).",
            "<suite>_gain: (robust - robust of the baseline) / robust of the baseline (%), the paper's relative "
            "gain. Click a column header to sort."]


def write_html(board: Leaderboard, path: str | Path, sort: str | None = None) -> list[Path]:
    """Write the page and its figures (also as PNG files in ``<path stem>_plots/``); returns the files."""
    from . import plots
    path = Path(path)
    figures = plots.figures(board)
    folder = path.with_name(f"{path.stem}_plots")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (caption, png) in figures.items():
        (folder / f"{name}.png").write_bytes(png)
        written.append(folder / f"{name}.png")
    path.write_text(to_html(board, list(figures.values()), sort))
    return [path, *written]


def render(results_dir: str | Path, fmt: str = "md", baseline: str | None = None, sort: str | None = None,
           output: str | Path | None = None) -> str:
    """The leaderboard as text (md/csv), written to ``output`` when given; html is always written to a file
    (default ``RESULTS/leaderboard.html``) and the returned text says where."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    board = build(results_dir, baseline)
    if fmt == "html":
        files = write_html(board, output or Path(results_dir) / "leaderboard.html", sort)
        return f"wrote {files[0]} (figures also as PNG in {files[0].with_name(files[0].stem + '_plots')})"
    text = to_markdown(board, sort) if fmt == "md" else to_csv(board, sort)
    if output:
        Path(output).write_text(text)
        return f"wrote {output}"
    return text
