"""Masks, distributions and reports, checked against independent computations."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sparse_zoo.sparsity import (
    MaskConfig, check_masks, first_and_classifier, layer_counts, layer_densities, mask_gradients,
    maskable_layers, masks, plan, report, sparsify, topk_mask,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 32, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def rigl_erk_reference(shapes, density, kernel=True, power=1.0):
    """RigL's get_sparsities (Evci et al. 2020), transcribed from the paper's description.

    eps * raw_l is the density of layer l; raw_l = (sum of dims / product of dims)^power
    (ERK) or (n_in + n_out) / (n_in n_out) (ER). Layers whose density would exceed 1
    are made dense and the budget re-solved.
    """
    dense = set()
    while True:
        rhs, divisor, raw = 0.0, 0.0, {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            if name in dense:
                rhs -= n * (1 - density)
            else:
                rhs += n * density
                dims = shape if kernel else shape[:2]
                raw[name] = (sum(dims) / math.prod(dims)) ** power
                divisor += raw[name] * n
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps > 1:
            dense.update(name for name, r in raw.items() if r == top)
        else:
            return {name: 1.0 if name in dense else eps * raw[name] for name in shapes}


@pytest.mark.parametrize("density", [0.05, 0.3, 0.6, 0.9])
@pytest.mark.parametrize("name,kernel,power", [("erk", True, 1.0), ("erk", True, 0.5), ("er", False, 1.0)])
def test_er_erk_match_rigl_formula(density, name, kernel, power):
    shapes = shapes_of(conv_net())
    got = layer_densities(name, shapes, {}, density, power=power)
    want = rigl_erk_reference(shapes, density, kernel, power)
    assert got == pytest.approx(want, rel=1e-12)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(got[n] * math.prod(s) for n, s in shapes.items()) == pytest.approx(density * total)


def test_erk_caps_small_layers_at_dense():
    densities = layer_densities("erk", shapes_of(conv_net()), {}, 0.6)
    assert densities["0"] == 1.0 and densities["11"] == 1.0 and densities["5"] < 0.6


@pytest.mark.parametrize("distribution", ["uniform", "er", "erk"])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.77, 0.99])
def test_plan_counts_are_exact(distribution, sparsity):
    model = conv_net()
    shapes = shapes_of(model)
    counts = plan(model, sparsity, distribution)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == round((1 - sparsity) * total)
    densities = layer_densities(distribution, shapes, {}, 1 - sparsity)
    for n, k in counts.items():
        assert abs(k - densities[n] * math.prod(shapes[n])) <= 1
        assert 0 <= k <= math.prod(shapes[n])


def test_sparsify_registers_exact_masks():
    model = conv_net()
    counts = sparsify(model, 0.7, "erk", seed=5)
    found = masks(model)
    for name, k in counts.items():
        numel = dict(model.named_modules())[name].weight.numel()
        if k == numel:
            assert name not in found  # dense layers carry no mask
        else:
            assert int(found[name].sum()) == k
            assert int(torch.count_nonzero(dict(model.named_modules())[name].weight)) <= k
    check_masks(model)
    again = conv_net()
    sparsify(again, 0.7, "erk", seed=5)
    assert all(torch.equal(found[n], m) for n, m in masks(again).items())


def test_dense_first_classifier_overrides_exclude():
    model = conv_net()
    first, heads = first_and_classifier(model)
    assert (first, heads) == ("0", ["11"])
    config = MaskConfig(dense_first=True, dense_classifier=True, overrides={"5": 0.25}, exclude=("7",))
    layers = maskable_layers(model, config)
    assert layers == {"0": 1.0, "3": None, "5": 0.25, "11": 1.0}
    counts = plan(model, 0.7, "uniform", config)
    shapes = shapes_of(model)
    assert "7" not in counts
    assert counts["0"] == 3 * 16 * 9 and counts["11"] == 320 and counts["5"] == round(0.25 * 64 * 32 * 9)
    budget = sum(math.prod(shapes[n]) for n in counts)
    assert sum(counts.values()) == round(0.3 * budget)  # fixed layers are paid from the same budget
    assert counts["3"] == round(0.3 * budget) - counts["0"] - counts["11"] - counts["5"]
    with pytest.raises(ValueError, match="density 0.5000 cannot be reached"):
        plan(model, 0.5, "uniform", config)  # even a dense layer 3 leaves the target unmet


def test_budget_too_small_for_dense_layers():
    with pytest.raises(ValueError, match="already hold more than density"):
        plan(conv_net(), 0.995, "uniform", MaskConfig(dense_first=True, dense_classifier=True,
                                                      overrides={"7": 1.0}))


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown sparsity distribution 'erkk'; valid: er, erk, uniform"):
        plan(conv_net(), 0.5, "erkk")
    with pytest.raises(ValueError, match=r"outside \[0, 1\)"):
        plan(conv_net(), 1.0)
    with pytest.raises(ValueError, match="no maskable layer"):
        plan(nn.Sequential(nn.BatchNorm2d(3)), 0.5)
    with pytest.raises(ValueError, match="override '3'"):
        plan(conv_net(), 0.5, config=MaskConfig(overrides={"3": 0.0}))


def test_layer_counts_remainder_goes_to_largest_fraction():
    shapes = {"a": (10,), "b": (10,), "c": (10,)}
    counts = layer_counts(shapes, {"a": 0.34, "b": 0.33, "c": 0.33}, {}, 1 / 3)
    assert counts == {"a": 4, "b": 3, "c": 3}


def test_topk_tie_break_is_lowest_index():
    scores = torch.tensor([[1.0, 3.0, 3.0], [2.0, 3.0, 1.0]])
    assert topk_mask(scores, 2).tolist() == [[False, True, True], [False, False, False]]
    assert topk_mask(scores, 4).tolist() == [[False, True, True], [True, True, False]]
    assert topk_mask(scores, 5).tolist() == [[True, True, True], [True, True, False]]
    g = torch.Generator().manual_seed(0)
    for k in (0, 1, 17, 50, 99, 100):
        ties = torch.randint(0, 4, (100,), generator=g).float().masked_fill(torch.arange(100) % 7 == 0, -math.inf)
        ref = torch.zeros(100, dtype=torch.bool)
        ref[torch.argsort(ties, descending=True, stable=True)[:k]] = True
        assert torch.equal(topk_mask(ties, k), ref), k
    with pytest.raises(ValueError, match=r"k=7 is outside \[0, 6\]"):
        topk_mask(scores, 7)


def test_masks_live_in_state_dict_and_move_with_to():
    model = conv_net()
    sparsify(model, 0.5, "uniform")
    state = model.state_dict()
    assert state["3.weight_mask"].dtype == torch.bool and "3.weight" in state
    model.to(torch.float64)
    assert model[3].weight.dtype == torch.float64 and model[3].weight_mask.dtype == torch.bool
    model.to("meta")
    assert model[3].weight_mask.device.type == "meta"
    fresh = conv_net()
    sparsify(fresh, 0.5, "uniform", seed=9)
    fresh.load_state_dict(state)
    assert torch.equal(fresh[3].weight_mask, state["3.weight_mask"])


def test_check_masks_names_the_tensor():
    model = conv_net()
    sparsify(model, 0.5)
    with torch.no_grad():
        model[5].weight[~model[5].weight_mask] = 1.0
    outside = int((~model[5].weight_mask).sum())
    with pytest.raises(ValueError, match=rf"^5\.weight has {outside} nonzero values outside 5\.weight_mask$"):
        check_masks(model)
    model[3].weight_mask = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"3\.weight_mask: expected bool of shape \(32, 16, 3, 3\)"):
        check_masks(model)


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
], ids=["sgd", "nesterov", "adamw", "adam"])
def test_mask_gradients_keeps_sparsity(make_opt):
    model = conv_net()
    counts = sparsify(model, 0.8, "erk")
    handles = mask_gradients(model)
    opt = make_opt(model.parameters())
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.randn(2, 3, 8, 8, generator=g)
        nn.functional.cross_entropy(model(x), torch.tensor([1, 2])).backward()
        opt.step()
        opt.zero_grad()
        check_masks(model)
    modules = dict(model.named_modules())
    for name, mask in masks(model).items():
        assert int(torch.count_nonzero(modules[name].weight)) <= counts[name] == int(mask.sum())
    assert any((modules[n].weight != 0).sum() > 0 for n in masks(model))
    for h in handles:
        h.remove()


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)   # 4x4 input -> 2x2 output
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_report_matches_hand_computation():
    model = TinyNet()
    with torch.no_grad():
        model.conv.weight[:, :, 0, :] = 0  # 4 * 2 * 3 = 24 of 72 weights zero
        model.fc.weight[0] = 0            # 16 of 48 zero
    r = report(model, (2, 4, 4))
    conv, fc = r.layers
    assert (conv.name, conv.shape, conv.numel, conv.nonzeros) == ("conv", (4, 2, 3, 3), 72, 48)
    assert (fc.name, fc.numel, fc.nonzeros) == ("fc", 48, 32)
    # conv: each weight is used once per output position (2x2); linear: once per example
    assert conv.dense_flops == 2 * 72 * 4 and conv.sparse_flops == 2 * 48 * 4
    assert fc.dense_flops == 2 * 48 and fc.sparse_flops == 2 * 32
    f_d, f_s = 2 * 72 * 4 + 2 * 48, 2 * 48 * 4 + 2 * 32
    assert (r.dense_flops, r.sparse_flops) == (f_d, f_s)
    assert r.density == pytest.approx(80 / 120) and r.sparsity == pytest.approx(40 / 120)
    assert r.total_params == 72 + 4 + 48 + 3 and r.nonzero_params == 80 + 4 + 3
    assert r.training_flops() == 3 * f_s
    assert r.training_flops(gradient_regrow=True, delta_t=100) == pytest.approx((3 * f_s * 100 + 2 * f_s + f_d) / 101)
    d = json.loads(json.dumps(r.as_dict()))
    assert d["layers"][0]["density"] == pytest.approx(48 / 72) and d["maskable_nonzeros"] == 80
    assert "conv" in r.table() and "inference FLOPs" in r.table()


def test_report_without_input_size_has_no_flops():
    r = report(TinyNet())
    assert r.dense_flops == 0 and [row.name for row in r.layers] == ["conv", "fc"]


def test_report_cli_json_matches_report(capsys):
    import timm

    from sparse_zoo.cli import main

    name, args = "resnet34_cifar_rigl_s50", ["--model-arg", "width=0.25", "--model-arg", "num_classes=10"]
    assert main(["report", name, *args, "--input-size", "3", "32", "32", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    want = report(timm.create_model(name, width=0.25, num_classes=10), (3, 32, 32)).as_dict()
    assert printed == json.loads(json.dumps(want))
    assert printed["sparsity"] == pytest.approx(0.5, abs=1e-4) and printed["sparse_flops"] < printed["dense_flops"]
    with pytest.raises(SystemExit) as exc:
        main(["report", name, *args, "--input-size", "32", "32"])
    assert exc.value.code == 2 and "C H W or C T H W" in capsys.readouterr().err
