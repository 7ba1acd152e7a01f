"""The DST engine: exact counts, invariants, schedules, AMP, resume, bad input."""
from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

import sparse_zoo.dst as dst
from sparse_zoo.dst import schedules
from sparse_zoo.sparsity import MaskConfig, check_masks, masks, sparsify

ALL = ["dense", "static", "set", "rigl", "mest_r", "mest_g", "granet_r", "granet_g", "acdc"]
SPARSE = [m for m in ALL if m != "dense"]
TOTAL, DT = 24, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(4, 3, 6, 6, generator=g), torch.randint(0, 10, (4,), generator=g)


def train_step(model, opt, engine, step: int) -> bool:
    x, y = batch(step)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    changed = engine.step()
    opt.zero_grad()
    return changed


def maskable_total(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def reference_density(method: str, step: int, b: float) -> float:
    """The paper's density trajectories, written out independently of the engine."""
    last = (int(0.75 * TOTAL) // DT) * DT
    if method.startswith("mest"):
        return b + 0.1 * b * max(0.0, 1 - step / last)
    if method.startswith("granet"):
        half = TOTAL / 2
        return b + (0.8 - b) * (1 - min(step / half, 1.0)) ** 3
    if method == "acdc":  # warm-up 10%, phases of DT steps starting sparse, final 15% sparse
        warm, final = round(0.1 * TOTAL), TOTAL - round(0.15 * TOTAL)
        sparse = step >= final or (step >= warm and ((step - warm) // DT) % 2 == 0)
        return b if sparse else 1.0
    return b


def make(method, distribution="uniform", optimizer="sgd", sparsity=0.6, seed=0, **options):
    model = tiny_net()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4) if optimizer == "sgd"
           else torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.05))
    engine = dst.create(method, model, opt, sparsity=sparsity, distribution=distribution,
                        delta_t=DT, total_steps=TOTAL, seed=seed, **options)
    return model, opt, engine


def test_methods_listed():
    assert dst.methods() == ALL
    assert dst.method_options("mest_r")["soft_bound"] == 0.1
    assert dst.method_options("granet_g")["initial_density"] == 0.8
    assert dst.method_options("rigl")["drop_fraction"] == 0.3


@pytest.mark.parametrize("distribution,optimizer", [("uniform", "sgd"), ("erk", "adamw")])
@pytest.mark.parametrize("method", SPARSE)
def test_counts_invariants_and_regrowth(method, distribution, optimizer):
    model, opt, engine = make(method, distribution, optimizer)
    b, n_total = 0.4, maskable_total(model)
    layers = dict(engine.layers)
    assert sum(engine.nonzeros().values()) == round(reference_density(method, 0, b) * n_total)
    n_updates = 0
    for step in range(1, TOTAL + 1):
        x, y = batch(step)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        old = {n: m.weight_mask.clone() for n, m in layers.items()}
        pre = {n: (m.weight.detach() * m.weight_mask).clone() for n, m in layers.items()}
        state = {n: {k: v.clone() for k, v in opt.state[m.weight].items() if v.shape == m.weight.shape}
                 for n, m in layers.items()}
        changed = engine.step()
        opt.zero_grad()
        check_masks(model)  # exactly zero outside every mask, after every step
        if not changed:
            assert all(torch.equal(old[n], m.weight_mask) for n, m in layers.items()), step
            continue
        n_updates += 1
        if method.startswith("granet") and step < TOTAL // 2:  # pruning phase: regrow fewer than removed
            assert sum(int((m.weight_mask & ~old[n]).sum()) for n, m in layers.items()) < \
                sum(int((old[n] & ~m.weight_mask).sum()) for n, m in layers.items())
        assert engine.nonzeros() == engine.planned_counts(step)
        assert sum(engine.nonzeros().values()) == round(reference_density(method, step, b) * n_total), step
        for n, m in layers.items():
            new, w = m.weight_mask, m.weight.detach()
            kept, grown, pruned = old[n] & new, new & ~old[n], old[n] & ~new
            assert torch.equal(w[kept], pre[n][kept])  # dropped-and-regrown keep their value
            assert not w[grown].any() and not w[pruned].any()
            for key, value in opt.state[m.weight].items():
                if value.shape == w.shape:
                    assert not value[grown | pruned].any(), (n, key)
                    assert torch.equal(value[kept], state[n][key][kept])
    expected = {"static": 0, "acdc": 7}.get(method, int(0.75 * TOTAL) // DT)
    assert n_updates == expected
    assert sum(engine.nonzeros().values()) == round(b * n_total)  # every method ends at the target


def test_dense_keeps_no_masks_and_counts_steps():
    model, opt, engine = make("dense")
    for step in range(1, 5):
        assert not train_step(model, opt, engine, step)
    assert masks(model) == {} and engine.step_count == 4


def test_topology_actually_changes():
    model, opt, engine = make("set")
    first = {n: m.clone() for n, m in masks(model).items()}
    for step in range(1, DT + 1):
        train_step(model, opt, engine, step)
    assert any(not torch.equal(first[n], m) for n, m in masks(model).items())


def _one_linear(method: str, **options):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    engine = dst.create(method, model, opt, sparsity=0.5, delta_t=1, total_steps=8,
                        drop_fraction=0.3, drop_schedule="constant", **options)
    return model[0], engine


def test_rigl_drops_smallest_and_grows_largest_gradient():
    layer, engine = _one_linear("rigl")
    old = layer.weight_mask.clone()
    magnitudes = layer.weight.detach().abs().masked_fill(~old, math.inf).flatten()
    smallest = magnitudes.argsort()[:15]  # round(0.3 * 50) dropped
    grad = torch.zeros(100)
    inactive = (~old).flatten().nonzero().squeeze(1)
    target = inactive[torch.randperm(50, generator=torch.Generator().manual_seed(1))[:15]]
    grad[target] = torch.arange(1.0, 16.0)
    layer.weight.grad = grad.view(10, 10)
    assert engine.step()
    new = layer.weight_mask.flatten()
    assert new[target].all() and not new[smallest].any() and int(new.sum()) == 50


def test_set_drops_smallest_magnitude():
    layer, engine = _one_linear("set")
    old = layer.weight_mask.clone().flatten()
    magnitudes = layer.weight.detach().abs().flatten().masked_fill(~old, math.inf)
    order = magnitudes.argsort()
    engine.step()
    new = layer.weight_mask.flatten()
    assert new[order[15:50]].all()  # the 35 largest active survive
    assert int(new.sum()) == 50


def test_gradient_method_without_gradients_raises():
    layer, engine = _one_linear("rigl")
    with pytest.raises(RuntimeError, match="before optimizer.zero_grad"):
        engine.step()
    layer.weight.grad = torch.zeros_like(layer.weight)  # zero_grad(set_to_none=False) came first
    with pytest.raises(RuntimeError, match="None or zero"):
        engine.step()


@pytest.mark.parametrize("method", ["set", "rigl", "granet_g", "acdc"])
def test_non_finite_gradients_leave_topology(method):
    model, opt, engine = make(method)
    for step in range(1, DT):
        train_step(model, opt, engine, step)
    while not engine.wants_update(engine.step_count + 1):
        train_step(model, opt, engine, engine.step_count + 1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    before = {n: m.clone() for n, m in masks(model).items()}
    x, y = batch(99)
    scaler.scale(nn.functional.cross_entropy(model(x), y) * math.inf).backward()
    scaler.step(opt)  # finds inf, skips the optimizer step
    scaler.update()
    assert not engine.step()
    opt.zero_grad()
    assert engine.skipped_updates == 1
    assert all(torch.equal(before[n], m) for n, m in masks(model).items())
    check_masks(model)


def _run(method: str, steps: range, state=None):
    model, opt, engine = make(method, "erk", "adamw" if method in ("mest_g", "acdc") else "sgd")
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        engine.load_state_dict(state["engine"])
    for step in steps:
        train_step(model, opt, engine, step)
    return model, opt, engine


@pytest.mark.parametrize("method", ALL)
def test_resume_is_bitwise_identical(method):
    straight, _, _ = _run(method, range(1, TOTAL + 1))
    model, opt, engine = _run(method, range(1, TOTAL // 2 + 1))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "engine": engine.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed, _, engine2 = _run(method, range(TOTAL // 2 + 1, TOTAL + 1), state)
    assert engine2.step_count == TOTAL
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_load_state_rejects_misfits_without_change():
    model, opt, engine = make("rigl")
    state = engine.state_dict()
    before = {n: m.clone() for n, m in masks(model).items()}
    bad = dict(state, masks={**state["masks"], "0": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="saved mask '0'"):
        engine.load_state_dict(bad)
    with pytest.raises(ValueError, match="delta_t: saved 7, now 3"):
        engine.load_state_dict(dict(state, step=5, config=dict(state["config"], delta_t=7)))
    assert engine.step_count == 0
    assert all(torch.equal(before[n], m) for n, m in masks(model).items())


def test_other_seed_other_masks_same_counts():
    m1, _, e1 = make("static", seed=0)
    m2, _, e2 = make("static", seed=1)
    assert e1.nonzeros() == e2.nonzeros()
    assert any(not torch.equal(a, b) for a, b in zip(masks(m1).values(), masks(m2).values()))


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="sett"), "unknown DST method 'sett'; valid: dense, static, set, rigl"),
    (dict(distribution="erk2"), "unknown sparsity distribution 'erk2'; valid: er, erk, uniform"),
    (dict(sparsity=1.0), r"outside \[0, 1\)"),
    (dict(sparsity=-0.1), r"outside \[0, 1\)"),
    (dict(delta_t=0), "delta_t must be a positive integer"),
    (dict(total_steps=2), "total_steps=2 is too small"),
    (dict(drop_fraction=0.3, typo=1), "unknown option.*typo.*valid: drop_fraction"),
    (dict(drop_schedule="linear"), "valid: constant, cosine, polynomial"),
    (dict(method="granet_r", sparsity=0.1), "initial_density 0.8 must lie in"),
    (dict(method="mest_r", sparsity=0.05), "soft_bound"),
    (dict(existing_masks="merge"), "valid: keep, redraw"),
    (dict(mask_config=MaskConfig(overrides={"0": 1.5})), r"outside \(0, 1\]"),
    (dict(mask_config=MaskConfig(exclude=("*",))), "no maskable layer"),
])
def test_bad_input_names_problem_and_changes_nothing(kwargs, match):
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    args = dict(method="rigl", sparsity=0.5, distribution="uniform", delta_t=2, total_steps=100) | kwargs
    with pytest.raises(ValueError, match=match):
        dst.create(args.pop("method"), model, opt, **args)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_existing_masks_keep_check_and_redraw():
    model = tiny_net()
    sparsify(model, 0.6, "erk", seed=3)
    zoo = {n: m.clone() for n, m in masks(model).items()}
    engine = dst.create("rigl", model, None, sparsity=0.6, distribution="erk", delta_t=2, total_steps=10)
    assert all(torch.equal(zoo[n], m) for n, m in masks(model).items())
    assert set(engine.layers) == {"0", "3", "7"}

    with pytest.raises(ValueError, match=r"weight_mask holds \d+ nonzeros.*existing_masks='redraw'"):
        dst.create("rigl", model, None, sparsity=0.8, delta_t=2, total_steps=10)
    with pytest.raises(ValueError, match="use method 'static'"):
        dst.create("dense", model, None, sparsity=0.0, delta_t=2, total_steps=10)
    engine = dst.create("rigl", model, None, sparsity=0.8, delta_t=2, total_steps=10, existing_masks="redraw")
    assert engine.nonzeros() == engine.planned_counts(0)
    check_masks(model)
    dst.create("dense", model, None, sparsity=0.0, delta_t=2, total_steps=10, existing_masks="redraw")
    assert masks(model) == {}


def test_dense_classifier_stays_unmasked():
    model = tiny_net()
    engine = dst.create("set", model, None, sparsity=0.5, delta_t=2, total_steps=10,
                        mask_config=MaskConfig(dense_classifier=True))
    assert "7" not in engine.layers and "7" not in masks(model)
    # the dense classifier is paid for from the budget: the rest is sparser than 0.5
    n_cls = model[7].weight.numel()
    assert sum(engine.nonzeros().values()) + n_cls == round(0.5 * maskable_total(model))


def test_schedules_are_the_papers_formulas():
    cos = schedules.DropSchedule(0.3, "cosine", end_step=75, total_steps=100, power=0.01)
    assert cos(0) == pytest.approx(0.3) and cos(75) == pytest.approx(0.0) and cos(37.5) == pytest.approx(0.15)
    poly = schedules.DropSchedule(0.1, "polynomial", end_step=75, total_steps=100, power=0.01)
    assert poly(50) == pytest.approx(0.1 * 0.5 ** 0.01)
    assert [t for t in range(0, 101) if schedules.is_update_step(t, 10, 75)] == [10, 20, 30, 40, 50, 60, 70]
    assert schedules.cubic_density(25, 0.8, 0.1, 0, 50) == pytest.approx(0.1 + 0.7 * 0.5 ** 3)
    assert schedules.cubic_density(80, 0.8, 0.1, 0, 50) == pytest.approx(0.1)
    assert schedules.soft_bound(0, 0.03, 70, 1.0) == pytest.approx(0.03)
    assert schedules.soft_bound(70, 0.03, 70, 1.0) == 0.0
    assert schedules.step_seed(0, 5) == schedules.step_seed(0, 5) != schedules.step_seed(1, 5)


def test_acdc_ends_sparse_after_dense_phases():
    model, opt, engine = make("acdc")
    densities = []
    for step in range(1, TOTAL + 1):
        train_step(model, opt, engine, step)
        densities.append(sum(engine.nonzeros().values()) / maskable_total(model))
    assert densities[0] == 1.0 and 1.0 in densities[5:] and densities[-1] == pytest.approx(0.4, abs=1e-2)


def test_masks_loaded_into_the_model_take_effect():
    """Masks replaced through model.load_state_dict are the ones the next step applies."""
    model, opt, engine = make("static")
    other, _, _ = make("static", seed=5)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # break the invariant everywhere
    engine.step()
    check_masks(model)
    assert all(torch.equal(a, b) for a, b in zip(masks(model).values(), masks(other).values()))
