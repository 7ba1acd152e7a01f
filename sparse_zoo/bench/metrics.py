"""Robustness metrics over a table of top-1 accuracies per (corruption, severity).

A *table* maps corruption -> severity -> top-1 accuracy in [0, 1]. Definitions:

- mean robust accuracy: the unweighted mean over the table's (corruption, severity)
  cells (the paper's "robustness accuracy").
- corruption error (Hendrycks & Dietterich 2019): CE_c = sum_s E_{s,c} / sum_s E^ref_{s,c}
  with E = 1 - accuracy and a reference model's errors; mCE is the mean over
  corruptions. For ImageNet-C the reference is AlexNet (:data:`ALEXNET_ERRORS`); for
  CIFAR and Tiny-ImageNet any baseline model's table (:func:`errors`).
- relative CE: rCE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^ref_{s,c} - E^ref_clean).
- the paper's relative robustness gain (footnote 2): (Acc_sparse - Acc_dense) / Acc_dense
  per cell.
"""
from __future__ import annotations

from collections.abc import Mapping

Table = Mapping[str, Mapping[int, float]]

# AlexNet's top-1 errors on ImageNet-C per severity 1..5: the published normalisers of
# mCE (hendrycks/robustness; their means are the per-corruption constants of that
# repository's ImageNet-C test script, e.g. 0.886428 for gaussian_noise). The last four
# are the "extra" corruptions, not part of the 15-corruption mCE.
ALEXNET_ERRORS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.7444, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.9594),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.8226),
}
# AlexNet's clean ImageNet top-1 error (torchvision's AlexNet, 56.52% top-1), for relative mCE.
ALEXNET_CLEAN_ERROR = 0.4348


def accuracy(correct: int, n: int) -> float:
    if n <= 0:
        raise ValueError(f"no images were evaluated (n={n})")
    return correct / n


def mean_robust_accuracy(table: Table) -> float:
    """Mean top-1 over every (corruption, severity) cell of the table."""
    cells = [acc for per_severity in table.values() for acc in per_severity.values()]
    if not cells:
        raise ValueError("empty accuracy table")
    return sum(cells) / len(cells)


def errors(table: Table) -> dict[str, dict[int, float]]:
    """Top-1 errors (1 - accuracy) of a table: a baseline model's errors as an mCE reference."""
    return {c: {s: 1.0 - a for s, a in per.items()} for c, per in table.items()}


def alexnet_reference() -> dict[str, dict[int, float]]:
    """AlexNet's ImageNet-C errors as a reference table."""
    return {c: dict(enumerate(errs, start=1)) for c, errs in ALEXNET_ERRORS.items()}


def _reference_cells(table: Table, reference: Table) -> None:
    absent = [f"{c}/{s}" for c, per in table.items() for s in per if s not in reference.get(c, {})]
    if absent:
        raise ValueError(f"the reference has no error for {', '.join(absent[:8])}"
                         f"{' ...' if len(absent) > 8 else ''}; it covers {', '.join(sorted(reference))}")


def corruption_errors(table: Table, reference: Table) -> dict[str, float]:
    """CE per corruption: the model's summed errors over severities / the reference's."""
    _reference_cells(table, reference)
    return {c: sum(1.0 - a for a in per.values()) / sum(reference[c][s] for s in per)
            for c, per in table.items()}


def mce(table: Table, reference: Table) -> float:
    ces = corruption_errors(table, reference)
    return sum(ces.values()) / len(ces)


def relative_corruption_errors(table: Table, clean_accuracy: float, reference: Table,
                               reference_clean_error: float) -> dict[str, float]:
    """Relative CE per corruption: the error added by the corruption, over the reference's."""
    _reference_cells(table, reference)
    clean_error = 1.0 - clean_accuracy
    return {c: sum((1.0 - a) - clean_error for a in per.values())
            / sum(reference[c][s] - reference_clean_error for s in per) for c, per in table.items()}


def relative_mce(table: Table, clean_accuracy: float, reference: Table, reference_clean_error: float) -> float:
    rces = relative_corruption_errors(table, clean_accuracy, reference, reference_clean_error)
    return sum(rces.values()) / len(rces)


def relative_gain(table: Table, baseline: Table) -> dict[str, dict[int, float]]:
    """The paper's (Acc_sparse - Acc_dense) / Acc_dense per cell, over the cells both tables have."""
    return {c: {s: (a - baseline[c][s]) / baseline[c][s] if baseline[c][s] else float("nan")
                for s, a in per.items() if s in baseline.get(c, {})}
            for c, per in table.items() if c in baseline}
