"""Layer-wise sparsity distributions: how a global density budget is split over layers.

Each distribution is a pure function ``(shapes, fixed, density, **options) -> densities``
registered in ``DISTRIBUTIONS``. ``fixed`` holds layers whose density is set in
advance (kept dense, per-layer overrides); they are paid for out of the same budget,
so the global target is met over all maskable weights. ``layer_counts`` then turns
densities into exact integer nonzero counts whose sum is exactly
``round(density * total)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

Shape = Sequence[int]
Distribution = Callable[..., dict[str, float]]
DISTRIBUTIONS: dict[str, Distribution] = {}


def register_distribution(name: str) -> Callable[[Distribution], Distribution]:
    def wrap(fn: Distribution) -> Distribution:
        DISTRIBUTIONS[name] = fn
        return fn
    return wrap


def _free_budget(shapes: Mapping[str, Shape], fixed: Mapping[str, float], density: float) -> float:
    total = sum(math.prod(s) for s in shapes.values())
    budget = density * total - sum(fixed[n] * math.prod(shapes[n]) for n in fixed)
    if budget < 0:
        raise ValueError(
            f"the layers kept dense or fixed by overrides already hold more than density {density:.4f} "
            "of the maskable weights; lower the sparsity or keep fewer layers dense")
    return budget


def _scaled(shapes, fixed, density, raw: Mapping[str, float]) -> dict[str, float]:
    """Densities proportional to ``raw`` scores that spend the free budget, capping layers at 1.

    The capping loop is RigL's (Evci et al. 2020): while the densest layer would
    exceed 1, make it dense, pay for it from the budget and rescale the rest.
    """
    budget = _free_budget(shapes, fixed, density)
    free = [n for n in shapes if n not in fixed]
    dense: set[str] = set()
    while True:
        live = [n for n in free if n not in dense]
        spent = sum(math.prod(shapes[n]) for n in dense)
        divisor = sum(raw[n] * math.prod(shapes[n]) for n in live)
        if not live or divisor == 0:
            eps = 0.0
            break
        eps = (budget - spent) / divisor
        top = max(raw[n] for n in live)
        if eps * top <= 1.0:
            break
        dense.update(n for n in live if raw[n] == top)
    if not live and budget - spent > 0.5:
        raise ValueError(
            f"density {density:.4f} cannot be reached: the layers with a fixed density (dense_first, "
            "dense_classifier, overrides) hold too few weights even with every other layer dense; "
            "raise their densities or lower the target density")
    out = {n: float(fixed[n]) for n in fixed}
    out.update({n: 1.0 if n in dense else eps * raw[n] for n in free})
    if any(d < 0 for d in out.values()):
        raise ValueError("the budget cannot be met with these dense layers")
    return {n: out[n] for n in shapes}


@register_distribution("uniform")
def uniform(shapes: Mapping[str, Shape], fixed: Mapping[str, float], density: float) -> dict[str, float]:
    """Every free layer gets the same density."""
    return _scaled(shapes, fixed, density, {n: 1.0 for n in shapes})


@register_distribution("er")
def erdos_renyi(shapes: Mapping[str, Shape], fixed: Mapping[str, float], density: float,
                power: float = 1.0) -> dict[str, float]:
    """Erdos-Renyi (Mocanu et al. 2018): density proportional to (n_in + n_out) / (n_in * n_out)."""
    raw = {n: ((s[0] + s[1]) / (s[0] * s[1])) ** power for n, s in shapes.items()}
    return _scaled(shapes, fixed, density, raw)


@register_distribution("erk")
def erdos_renyi_kernel(shapes: Mapping[str, Shape], fixed: Mapping[str, float], density: float,
                       power: float = 1.0) -> dict[str, float]:
    """ERK (Evci et al. 2020): density proportional to (sum of the weight's dims) / (its size), to ``power``."""
    raw = {n: (sum(s) / math.prod(s)) ** power for n, s in shapes.items()}
    return _scaled(shapes, fixed, density, raw)


def layer_densities(name: str, shapes: Mapping[str, Shape], fixed: Mapping[str, float],
                    density: float, **options) -> dict[str, float]:
    """Look up a distribution by name and apply it."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown sparsity distribution {name!r}; valid: {', '.join(sorted(DISTRIBUTIONS))}")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density {density} is outside (0, 1]: sparsity must be in [0, 1)")
    if not shapes:
        raise ValueError("the model has no maskable layer (Conv1d/2d/3d or Linear weight)")
    return DISTRIBUTIONS[name](shapes, fixed, density, **options)


def layer_counts(shapes: Mapping[str, Shape], densities: Mapping[str, float],
                 fixed: Mapping[str, float] = {}, density: float | None = None) -> dict[str, int]:
    """Exact integer nonzero counts per layer.

    Fixed layers get ``round(d * n)``. When ``density`` is given, the free layers'
    counts are floored and the remainder goes to the largest fractional parts
    (ties to the earlier layer), so the total is exactly ``round(density * total)``;
    each layer is within one element of ``d * n``.
    """
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    counts = {n: round(fixed[n] * sizes[n]) for n in fixed}
    free = [n for n in shapes if n not in fixed]
    exact = {n: min(densities[n], 1.0) * sizes[n] for n in free}
    counts.update({n: math.floor(exact[n]) for n in free})
    if density is not None:
        target = round(density * sum(sizes.values()))
        short = target - sum(counts.values())
        by_frac = sorted(free, key=lambda n: (-(exact[n] - counts[n]), free.index(n)))
        for n in by_frac:
            if short <= 0:
                break
            if counts[n] < sizes[n]:
                counts[n] += 1
                short -= 1
    return {n: counts[n] for n in shapes}
