"""The group assignment as TensorFlow ops, for the Transform graph (and so the serving model).

Constants come from the fitted Grouping; the arithmetic mirrors fitting.assign (float64,
nearest centroid, first index on ties) so the serving model and the component agree row by row.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from components.grouping.fitting import KMEANS, Grouping


def group_ids(g: Grouping, columns: Mapping[str, tf.Tensor]) -> tf.Tensor:
  """int64 [batch] group ids from dense [batch] raw columns (NaN / '' where missing)."""
  if g.mode == KMEANS:
    x = tf.stack([tf.cast(columns[f], tf.float64) for f in g.features], axis=1)
    x = tf.where(tf.math.is_nan(x), tf.constant(g.impute[None, :], tf.float64), x)
    z = (x - tf.constant(g.mean, tf.float64)) / tf.constant(g.scale, tf.float64)
    c = tf.constant(g.centroids, tf.float64)
    d = tf.reduce_sum(tf.square(z[:, None, :] - c[None, :, :]), axis=2)
    return tf.argmin(d, axis=1, output_type=tf.int64)
  values = columns[g.features[0]]
  if values.dtype != tf.string:
    values = tf.strings.as_string(values)
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(g.vocabulary, tf.string),
          tf.range(len(g.vocabulary), dtype=tf.int64)),
      default_value=tf.constant(g.fallback_group, tf.int64))
  return table.lookup(values)
