"""Piecewise-linear encoding (PLE) of a numeric feature between quantile edges.

Why: an MLP on z-scores bends a response curve only where ReLU units happen to break, and
tree ensembles beat it on data whose response has kinks and plateaus (diamonds' price around
whole carats). With x encoded as `bins` ramps, one per quantile bin (0 below the bin, 1 above,
linear inside), one linear combination of the ramps is any piecewise-linear curve of the feature,
and the shared trunk starts from that basis (Gorishniy et al., 2022, "On Embeddings for
Numerical Features in Tabular Deep Learning"). The per-group head sees z-scores only (model.py).

Edges are [min, q_1/bins, ..., q_(bins-1)/bins, max] of the training data: in the Transform
graph from tft.quantiles and tft.max over all numeric columns at once (`edges_tft`), in NumPy for
the benchmark (`edges_numpy`).
A bin of zero width (repeated quantiles of a discrete feature) becomes a step at its edge.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

QUANTILE_EPSILON = 0.01  # tft.quantiles' rank error; bins are >= 1/20 wide for bins <= 20


def width(numeric_bins) -> int:
  """The encoding's width from a config value: 0 (off) unless it is at least 2."""
  bins = int(numeric_bins or 0)
  return bins if bins > 1 else 0


def edges_tft(x: tf.Tensor, bins: int) -> tf.Tensor:
  """[features, bins + 1] edges of each column of a [batch, features] float tensor over the whole
  dataset. Two analyzers for all the columns: one quantiles (per-column sketches,
  reduce_instance_dims=False) and one max over [x, -x], which gives each column's max and, negated
  exactly, its min. Every analyzer is its own chain of Beam stages: per-feature ones cost the
  Transform ~0.3 s each on Ames."""
  import tensorflow_transform as tft  # only needed inside preprocessing_fn
  columns = x.shape[1]
  inner = tft.quantiles(x, num_buckets=bins, epsilon=QUANTILE_EPSILON, reduce_instance_dims=False)
  inner = tf.reshape(tf.cast(inner, tf.float32), [columns, bins - 1])
  hi_neg_lo = tf.cast(tft.max(tf.concat([x, -x], axis=1), reduce_instance_dims=False), tf.float32)
  hi, lo = hi_neg_lo[:columns], -hi_neg_lo[columns:]
  return tf.concat([tf.reshape(lo, [columns, 1]), inner, tf.reshape(hi, [columns, 1])], axis=1)


def edges_numpy(x: np.ndarray, bins: int) -> np.ndarray:
  """The same edges from in-memory training values (NaN ignored), exact quantiles."""
  x = np.asarray(x, np.float64)
  x = x[~np.isnan(x)]
  if x.size == 0:
    return np.zeros(bins + 1, np.float32)
  return np.quantile(x, np.linspace(0.0, 1.0, bins + 1)).astype(np.float32)


def encode_tf(x: tf.Tensor, edges: tf.Tensor) -> tf.Tensor:
  """[batch] values, [bins + 1] edges -> [batch, bins] ramps in [0, 1]."""
  x = tf.cast(tf.reshape(x, [-1, 1]), tf.float32)
  left, right = edges[None, :-1], edges[None, 1:]
  width = right - left
  ramp = tf.clip_by_value(tf.math.divide_no_nan(x - left, width), 0.0, 1.0)
  step = tf.cast(x >= right, tf.float32)
  return tf.where(width > 0, ramp, step)


def encode_numpy(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """NumPy twin of encode_tf (float32, same arithmetic)."""
  x = np.asarray(x, np.float32).reshape(-1, 1)
  edges = np.asarray(edges, np.float32)
  left, right = edges[None, :-1], edges[None, 1:]
  width = right - left
  with np.errstate(divide="ignore", invalid="ignore"):
    ramp = np.clip(np.where(width > 0, (x - left) / np.where(width > 0, width, 1), 0), 0, 1)
  return np.where(width > 0, ramp, (x >= right).astype(np.float32)).astype(np.float32)
