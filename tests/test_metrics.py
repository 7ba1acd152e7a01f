"""Each robustness metric against a computation done by hand."""
import pytest

from sparse_zoo.bench import metrics

TABLE = {"gaussian_noise": {1: 0.8, 2: 0.6}, "fog": {1: 0.9, 2: 0.5}}
BASE = {"gaussian_noise": {1: 0.7, 2: 0.5}, "fog": {1: 0.9, 2: 0.6}}


def test_accuracy_and_mean_robust_accuracy():
    assert metrics.accuracy(37, 50) == 0.74
    # (0.8 + 0.6 + 0.9 + 0.5) / 4
    assert metrics.mean_robust_accuracy(TABLE) == pytest.approx(0.7)
    # unequal severities per corruption: every cell weighs the same
    assert metrics.mean_robust_accuracy({"a": {1: 1.0, 2: 0.0, 3: 0.5}, "b": {1: 0.5}}) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.accuracy(0, 0)
    with pytest.raises(ValueError):
        metrics.mean_robust_accuracy({})


def test_ce_and_mce_against_a_named_baseline():
    ces = metrics.corruption_errors(TABLE, metrics.errors(BASE))
    # gaussian: (0.2 + 0.4) / (0.3 + 0.5) = 0.75; fog: (0.1 + 0.5) / (0.1 + 0.4) = 1.2
    assert ces == {"gaussian_noise": pytest.approx(0.75), "fog": pytest.approx(1.2)}
    assert metrics.mce(TABLE, metrics.errors(BASE)) == pytest.approx((0.75 + 1.2) / 2)
    assert metrics.mce(BASE, metrics.errors(BASE)) == pytest.approx(1.0)


def test_mce_against_alexnet_uses_the_published_errors():
    table = {"gaussian_noise": {s: 0.5 for s in range(1, 6)}, "brightness": {s: 0.9 for s in range(1, 6)}}
    # sums of AlexNet's errors over the 5 severities: 4.43214 (gaussian), 2.82296 (brightness)
    gauss, bright = 2.5 / 4.43214, 0.5 / 2.82296
    assert metrics.corruption_errors(table, metrics.alexnet_reference()) == {
        "gaussian_noise": pytest.approx(gauss), "brightness": pytest.approx(bright)}
    assert metrics.mce(table, metrics.alexnet_reference()) == pytest.approx((gauss + bright) / 2)


def test_alexnet_table_matches_the_published_per_corruption_averages():
    published = {"gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
                 "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
                 "snow": 0.866816, "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592,
                 "contrast": 0.853204, "elastic_transform": 0.646056, "pixelate": 0.717840,
                 "jpeg_compression": 0.606500}
    for name, mean in published.items():
        assert sum(metrics.ALEXNET_ERRORS[name]) / 5 == pytest.approx(mean, abs=1e-6)


def test_relative_ce_and_relative_mce():
    # model clean acc 0.95 -> clean error 0.05; reference clean error 0.1
    rces = metrics.relative_corruption_errors(TABLE, 0.95, metrics.errors(BASE), 0.1)
    # gaussian: ((0.2-0.05) + (0.4-0.05)) / ((0.3-0.1) + (0.5-0.1)) = 0.5 / 0.6
    # fog: ((0.1-0.05) + (0.5-0.05)) / ((0.1-0.1) + (0.4-0.1)) = 0.5 / 0.3
    assert rces == {"gaussian_noise": pytest.approx(0.5 / 0.6), "fog": pytest.approx(0.5 / 0.3)}
    assert metrics.relative_mce(TABLE, 0.95, metrics.errors(BASE), 0.1) == pytest.approx((0.5 / 0.6 + 0.5 / 0.3) / 2)


def test_relative_gain_is_the_papers_definition():
    gains = metrics.relative_gain(TABLE, BASE)
    # (0.8 - 0.7) / 0.7, (0.6 - 0.5) / 0.5, (0.9 - 0.9) / 0.9, (0.5 - 0.6) / 0.6
    assert gains == {"gaussian_noise": {1: pytest.approx(1 / 7), 2: pytest.approx(0.2)},
                     "fog": {1: pytest.approx(0.0), 2: pytest.approx(-1 / 6)}}
    # cells the baseline lacks are left out, not invented
    assert metrics.relative_gain({"fog": {1: 0.5, 3: 0.4}, "snow": {1: 0.2}}, BASE) == {"fog": {1: pytest.approx(-4 / 9)}}


def test_missing_reference_cells_are_named():
    with pytest.raises(ValueError, match="fog/3"):
        metrics.mce({"fog": {3: 0.5}}, metrics.errors(BASE))
    with pytest.raises(ValueError, match="spatterz/1"):
        metrics.mce({"spatterz": {1: 0.5}}, metrics.alexnet_reference())
