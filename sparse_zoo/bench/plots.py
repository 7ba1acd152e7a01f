"""Leaderboard figures (matplotlib, PNG bytes).

- gain heatmap (the paper's figure 3 in heatmap form): per suite, one panel per model
  that has a baseline; rows are corruptions, columns severities, colour and label the
  relative gain (Acc - Acc_baseline) / Acc_baseline in %, blue where the model wins.
- accuracy against severity: per suite, one small panel per corruption with a line per
  model, severity 0 being the clean accuracy.
"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from . import metrics  # noqa: E402

_DPI = 110


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _order(suite: str, names) -> list[str]:
    from .suites import SUITES
    canonical = list(SUITES[suite].corruptions) if suite in SUITES else []
    return sorted(names, key=lambda c: (canonical.index(c) if c in canonical else len(canonical), c))


def gain_heatmap(gains: dict[str, dict[str, dict[int, float]]], suite: str, titles: dict[str, str]) -> bytes:
    """Panels ``model -> corruption -> severity -> gain`` (fractions) side by side on one colour scale."""
    models = list(gains)
    corruptions = _order(suite, {c for g in gains.values() for c in g})
    severities = sorted({s for g in gains.values() for per in g.values() for s in per})
    values = [abs(v) for g in gains.values() for per in g.values() for v in per.values() if not math.isnan(v)]
    limit = max(1.0, 100 * max(values, default=0.01))
    fig, axes = plt.subplots(1, len(models), figsize=(1.0 + 0.75 * len(severities) * len(models) + 1.6 * len(models),
                                                      1.2 + 0.34 * len(corruptions)), squeeze=False)
    image = None
    for ax, model in zip(axes[0], models):
        grid = [[100 * gains[model].get(c, {}).get(s, math.nan) for s in severities] for c in corruptions]
        image = ax.imshow(grid, cmap="RdBu", norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(v) > 0.6 * limit else "black")
        ax.set_xticks(range(len(severities)), [str(s) for s in severities])
        ax.set_yticks(range(len(corruptions)), corruptions if ax is axes[0][0] else [])
        ax.set_xlabel("severity")
        ax.set_title(titles.get(model, model), fontsize=9)
    cbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, pad=0.02)
    cbar.set_label("relative gain over baseline (%)")
    fig.suptitle(f"{suite}: relative robustness gain (Acc - Acc_baseline) / Acc_baseline", fontsize=10)
    return _png(fig)


def accuracy_vs_severity(tables: dict[str, dict[str, dict[int, float]]], clean: dict[str, float | None],
                         suite: str) -> bytes:
    """One panel per corruption, accuracy (%) against severity, a line per model (severity 0 = clean)."""
    corruptions = _order(suite, {c for t in tables.values() for c in t})
    cols = min(5, len(corruptions))
    rows = math.ceil(len(corruptions) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.1 * rows + 0.9), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, corruption in zip(axes.flat, corruptions):
        for model, table in tables.items():
            per = table.get(corruption, {})
            points = ([(0, clean[model])] if clean.get(model) is not None else []) + sorted(per.items())
            ax.plot([s for s, _ in points], [100 * a for _, a in points], marker="o", markersize=3, linewidth=1.2,
                    label=model)
        ax.set_title(corruption, fontsize=9)
        ax.set_xticks(range(0, 6))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(corruptions):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 (%)", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("severity (0 = clean)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.suptitle(f"{suite}: accuracy against severity", fontsize=10)
    return _png(fig)


def figures(board) -> dict[str, tuple[str, bytes]]:
    """Every figure of a leaderboard: ``name -> (caption, png bytes)``."""
    out = {}
    for suite in board.suites:
        runs = {m: r for (m, s), r in board.runs.items() if s == suite and r.table()}
        if not runs:
            continue
        gains, titles = {}, {}
        for model, run in runs.items():
            base = board.baselines.get(model)
            if base and base != model and base in runs:
                gains[model] = metrics.relative_gain(run.table(), runs[base].table())
                titles[model] = (f"{model} vs {base}\nmean robust {100 * metrics.mean_robust_accuracy(run.table()):.1f}%"
                                 f" (baseline {100 * metrics.mean_robust_accuracy(runs[base].table()):.1f}%)")
        if gains:
            out[f"{suite}_gain_heatmap"] = (f"{suite}: relative robustness gain over the baseline per corruption "
                                            f"and severity (%)", gain_heatmap(gains, suite, titles))
        out[f"{suite}_accuracy_vs_severity"] = (
            f"{suite}: top-1 against severity per corruption",
            accuracy_vs_severity({m: r.table() for m, r in runs.items()},
                                 {m: r.clean_accuracy for m, r in runs.items()}, suite))
    return out
