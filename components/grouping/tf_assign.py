"""The group assignment as TensorFlow ops, for the Transform graph (and so the serving model).

Constants come from the fitted Grouping; the arithmetic mirrors fitting.assign op for op
(float64, squared distances added column by column in the same order, first index on ties),
so the serving model and the component agree row by row.
"""
from __future__ import annotations

from typing import Mapping, Union

import tensorflow as tf

from components.grouping.fitting import KMEANS, Grouping

RawTensor = Union[tf.Tensor, tf.SparseTensor]


def _dense(x: RawTensor, default) -> tf.Tensor:
  """[batch] from a SparseTensor [batch, <=1] or a dense [batch] / [batch, 1] tensor."""
  if isinstance(x, tf.SparseTensor):
    batch = x.dense_shape[0]
    x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [batch, 1]), default_value=default)
  return tf.reshape(x, [-1])


def numeric_column(x: RawTensor) -> tf.Tensor:
  """float64 [batch]; missing (sparse) values are NaN. Integers convert exactly to float64."""
  if isinstance(x, tf.SparseTensor):
    x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float64), x.dense_shape)
    return _dense(x, tf.constant(float("nan"), tf.float64))
  return _dense(tf.cast(x, tf.float64), None)


def categorical_column(x: RawTensor) -> tf.Tensor:
  """string [batch]; integers become decimal text (as the component does); missing -> ''."""
  if x.dtype.is_floating:
    raise TypeError("a categorical grouping column must be string or integer, not float")
  if isinstance(x, tf.SparseTensor):
    if x.dtype != tf.string:
      x = tf.SparseTensor(x.indices, tf.strings.as_string(x.values), x.dense_shape)
    return _dense(x, "")
  return _dense(x if x.dtype == tf.string else tf.strings.as_string(x), None)


def raw_columns(g: Grouping, inputs: Mapping[str, RawTensor]) -> Mapping[str, tf.Tensor]:
  """The dense [batch] columns group_ids needs, from raw Transform/serving inputs."""
  cols = {f: numeric_column(inputs[f]) for f in g.numeric_features}
  cols.update({f: categorical_column(inputs[f]) for f in g.categorical_features})
  return cols


def _lookup(vocabulary, values: tf.Tensor, default: int) -> tf.Tensor:
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(list(vocabulary), tf.string),
          tf.range(len(vocabulary), dtype=tf.int64)),
      default_value=tf.constant(default, tf.int64))
  return table.lookup(values)


def group_ids(g: Grouping, columns: Mapping[str, tf.Tensor]) -> tf.Tensor:
  """int64 [batch] group ids from dense [batch] columns: numeric features as numbers (NaN where
  missing), categorical ones as strings ('' where missing). See raw_columns."""
  if g.mode != KMEANS:
    values = columns[g.features[0]]
    if values.dtype != tf.string:
      values = tf.strings.as_string(values)
    return _lookup(g.vocabulary, values, g.fallback_group)
  parts = [tf.cast(columns[f], tf.float64)[:, None] for f in g.numeric_features]
  for f, vocab in g.onehot.items():
    idx = _lookup(vocab, columns[f], -1)
    parts.append(tf.one_hot(idx, len(vocab), dtype=tf.float64))  # -1 -> all zeros
  x = tf.concat(parts, axis=1)
  x = tf.where(tf.math.is_nan(x), tf.constant(g.impute[None, :], tf.float64), x)
  z = (x - tf.constant(g.mean, tf.float64)) / tf.constant(g.scale, tf.float64)
  c = tf.constant(g.centroids, tf.float64)
  d = tf.square(z[:, 0:1] - c[None, :, 0])
  for j in range(1, len(g.columns)):
    d = d + tf.square(z[:, j:j + 1] - c[None, :, j])
  return tf.argmin(d, axis=1, output_type=tf.int64)
