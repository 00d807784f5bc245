"""The model benchmark's own arithmetic: synthetic group sizes, fold splits and the metrics."""
import numpy as np
import pytest

from bench.models import cv, metrics, synthetic


def test_zipf_sizes_cover_every_row_and_make_many_small_groups():
  sizes = synthetic.zipf_sizes(4000, 100, 1.1)
  assert sizes.sum() == 4000 and len(sizes) == 100 and sizes.min() >= 1
  assert np.all(np.diff(sizes[1:]) <= 0)                  # rank order
  assert (sizes <= 10).sum() >= 20                        # a long tail of small groups
  with pytest.raises(ValueError, match="rows .* must be >= groups"):
    synthetic.zipf_sizes(10, 20, 1.0)


def test_synthetic_frame_has_the_config_columns_and_known_coefficients():
  p = {"rows": 500, "groups": 10, "zipf_exponent": 1.0, "features": 3, "intercept_sd": 1.0,
       "slope_sd": 0.5, "noise_sd": 0.1, "seed": 3}
  df, truth = synthetic.generate(p)
  assert list(df.columns) == ["x1", "x2", "x3", "channel", "group", "y"]
  assert truth["slopes"].shape == (10, 3) and df["group"].nunique() == 10
  # Group 0 (the largest) is recovered by least squares up to the sin/channel terms and noise.
  rows = df["group"] == "g000"
  x = np.c_[np.ones(rows.sum()), df.loc[rows, ["x1", "x2", "x3"]].to_numpy()]
  coef, *_ = np.linalg.lstsq(x, df.loc[rows, "y"].to_numpy(), rcond=None)
  np.testing.assert_allclose(coef[2:], truth["slopes"][0, 1:], atol=0.15)


def test_folds_partition_the_rows_and_are_fixed_by_the_seed():
  folds = cv.fold_indices(103, 5, seed=0)
  assert sorted(np.concatenate(folds).tolist()) == list(range(103))
  again = cv.fold_indices(103, 5, seed=0)
  assert all(np.array_equal(a, b) for a, b in zip(folds, again))


def test_metrics_worst_and_small_group():
  y = np.zeros(30)
  pred = np.r_[np.full(10, 1.0), np.full(10, 2.0), np.full(10, 3.0)]
  test_g = np.repeat([0, 1, 2], 10)
  train_g = np.r_[np.zeros(50, int), np.ones(50, int), np.full(4, 2)]   # group 2: 4 train rows
  s = metrics.score_fold(y, pred, test_g, train_g, 1.0, worst_min_test_rows=10,
                         small_max_train_rows=10)
  assert sorted(s.group_rmse) == [1.0, 2.0, 3.0]
  np.testing.assert_allclose(s.small_sq_err, 9.0)
  out = metrics.summarise([s])
  assert out["worst_group_rmse"] == 3.0 and out["small_group_rmse"] == 3.0
  assert out["small_group_rows"] == 10
  assert out["rmse"] == pytest.approx(np.sqrt((1 + 4 + 9) / 3))
  with pytest.raises(ValueError, match="non-finite"):
    metrics.score_fold(y, np.r_[pred[:-1], np.nan], test_g, train_g, 1.0,
                       worst_min_test_rows=10, small_max_train_rows=10)


def test_paired_rmse_difference_ci():
  rng = np.random.default_rng(0)
  base = rng.normal(size=2000) ** 2
  assert metrics.paired_rmse_diff_ci(base, base) == [0.0, 0.0]
  lo, hi = metrics.paired_rmse_diff_ci(0.5 * base, base)          # a clearly better method
  assert hi < 0 and lo < hi
  noisy = base * rng.uniform(0.9, 1.1, base.size)                 # same quality, row noise
  lo, hi = metrics.paired_rmse_diff_ci(noisy, base)
  assert lo < 0 < hi
  assert all(np.isnan(metrics.paired_rmse_diff_ci([], [])))
  with pytest.raises(ValueError, match="paired rows differ"):
    metrics.paired_rmse_diff_ci(base[:3], base[:4])
