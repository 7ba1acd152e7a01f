import pytest
import torch

from sparse_zoo.corruptions.rng import Stream, sample_keys


def test_draws_of_a_sample_do_not_depend_on_its_batch():
    keys = sample_keys(3, torch.tensor([5, 9, 2, 7]), "gaussian_noise", 2)
    full = Stream(keys)
    a, b = full.uniform(4, 5), full.normal(7)
    perm = torch.tensor([2, 0, 3, 1])
    shuffled = Stream(keys[perm])
    assert torch.equal(shuffled.uniform(4, 5), a[perm]) and torch.equal(shuffled.normal(7), b[perm])
    single = Stream(keys[1:2])
    assert torch.equal(single.uniform(4, 5), a[1:2])


def test_keys_depend_on_every_part_of_the_identity():
    ids = torch.arange(4)
    base = sample_keys(0, ids, "fog", 1)
    for other in (sample_keys(1, ids, "fog", 1), sample_keys(0, ids, "snow", 1), sample_keys(0, ids, "fog", 2),
                  sample_keys(0, ids + 4, "fog", 1)):
        assert not torch.equal(base, other)
    assert torch.equal(base, sample_keys(0, ids, "fog", 1))
    assert len(set(base.tolist())) == 4


def test_distributions():
    s = Stream(sample_keys(0, torch.arange(8), "x", 1))
    u = s.uniform(20000)
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert float(u.mean()) == pytest.approx(0.5, abs=0.005) and float(u.var()) == pytest.approx(1 / 12, abs=0.002)
    z = s.normal(20001)
    assert z.shape == (8, 20001)
    assert float(z.mean()) == pytest.approx(0.0, abs=0.01) and float(z.std()) == pytest.approx(1.0, abs=0.01)
    assert float((z.abs() < 1).float().mean()) == pytest.approx(0.6827, abs=0.005)
    i = s.integers(3, 7, 10000)
    assert set(i.unique().tolist()) == {3, 4, 5, 6}
    assert torch.bincount(i.flatten() - 3).float().div(i.numel()).sub(0.25).abs().max() < 0.01
    with pytest.raises(ValueError, match="empty range"):
        s.integers(2, 2, 3)


@pytest.mark.parametrize("low, high", [(-4, 4), (-1, 2), (50, 200), (0, (1 << 15) - 1), (0, 1 << 15), (0, 1 << 20)])
def test_integers_are_floor_of_bits_times_span(low, high, monkeypatch):
    """The int32 path of small spans gives exactly the 64-bit formula, also at the extreme bit patterns."""
    s, t = (Stream(sample_keys(0, torch.arange(3), "x", 1)) for _ in range(2))
    i, bits = s.integers(low, high, 5000), t.bits(5000)
    assert i.dtype == torch.int64 and torch.equal(i, low + (bits * (high - low) >> 32))
    edge = torch.tensor([[0, -1, 0x7FFFFFFF, -0x80000000, 0xFFFF, 0x10000]], dtype=torch.int32)
    stream = Stream(torch.zeros(1, dtype=torch.int64))
    monkeypatch.setattr(stream, "_draws", lambda n, calls, fn, width=1: fn(edge.clone()))
    assert torch.equal(stream.integers(low, high, 6), low + ((edge.to(torch.int64) & 0xFFFFFFFF) * (high - low) >> 32))


def test_map_uniform_ints_is_fn_of_uniform_ints():
    def fn(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (k < 1 << 22).view(torch.uint8), (k % 251).to(torch.uint8)
    a, b = Stream(sample_keys(3, torch.arange(4), "x", 1)), Stream(sample_keys(3, torch.arange(4), "x", 1))
    mapped = a.map_uniform_ints(fn, 2, 3, 50, 70)
    expected = fn(b.uniform_ints(3, 50, 70))
    assert mapped.shape == (4, 2, 3, 50, 70) and mapped.dtype == torch.uint8
    assert all(torch.equal(m, e) for m, e in zip(mapped.unbind(1), expected))
    assert torch.equal(a.uniform(9), b.uniform(9))  # both streams advanced by one draw


def test_uniform_extremes_stay_inside_the_open_interval():
    from sparse_zoo.corruptions.rng import _to_uniform
    extremes = _to_uniform(torch.tensor([0, -1, 0x7FFFFFFF, -0x80000000], dtype=torch.int32))
    assert float(extremes.min()) > 0 and float(extremes.max()) < 1


def test_successive_draws_are_independent():
    s = Stream(sample_keys(0, torch.arange(2), "x", 1))
    a, b = s.uniform(5000), s.uniform(5000)
    assert not torch.equal(a, b)
    assert abs(float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])) < 0.03


@pytest.mark.parametrize("n", [1, 7, 2500, 2501])
def test_blocked_draws_equal_one_pass(monkeypatch, n):
    """Eager CPU draws run in cache-sized blocks; GPU and torch.compile in one pass: the values must agree."""
    from sparse_zoo.corruptions import rng

    def draws() -> list[torch.Tensor]:
        s = Stream(sample_keys(1, torch.arange(5), "x", 2))
        k = s.uniform_ints(n)
        mapped = s.map_uniform_ints(lambda k: (k >> 20, k & 7), 2, n)
        return [s.uniform(n), s.normal(n), s.bits(n), s.integers(0, 9, n), k, *mapped.unbind(1)]
    monkeypatch.setattr(rng, "_BLOCK", 1 << 40)
    whole = draws()
    monkeypatch.setattr(rng, "_BLOCK", 300)  # blocks of a few rows and of 300 columns, the last one partial
    for a, b in zip(whole, draws()):
        assert a.dtype == b.dtype and torch.equal(a, b)
