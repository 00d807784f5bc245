"""Piecewise-linear encoding: TF and NumPy twins agree, ramps, steps for zero-width bins."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models.grouped_regression import piecewise  # noqa: E402


def test_ramps_between_edges():
  edges = np.array([0.0, 1.0, 3.0], np.float32)
  x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 9.0], np.float32)
  np.testing.assert_allclose(piecewise.encode_numpy(x, edges), [
      [0, 0], [0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1], [1, 1]])


def test_tf_matches_numpy_including_repeated_edges():
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.integers(0, 4, 300).astype(np.float32),   # discrete: repeated quantiles
                      rng.normal(size=5).astype(np.float32)])
  edges = piecewise.edges_numpy(x, 10)
  assert len(np.unique(edges)) < len(edges)
  want = piecewise.encode_numpy(x, edges)
  got = piecewise.encode_tf(tf.constant(x), tf.constant(edges)).numpy()
  np.testing.assert_allclose(got, want, atol=1e-6)
  # a zero-width bin is a step at its edge, so equal values encode equally and stay in [0, 1]
  assert set(np.unique(want)) >= {0.0, 1.0} and want.min() >= 0 and want.max() <= 1


def test_edges_ignore_nan_and_cover_the_range():
  x = np.array([np.nan, 3.0, 1.0, 2.0, 5.0])
  e = piecewise.edges_numpy(x, 4)
  assert e[0] == 1.0 and e[-1] == 5.0 and np.all(np.diff(e) >= 0) and len(e) == 5
