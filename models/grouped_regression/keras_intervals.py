"""Fits the interval table of a trained Keras variant (any variant; head uncertainty for the
multihead from its empirical-Bayes refit). The maths lives in intervals.py."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from models.grouped_regression import features as fk
from models.grouped_regression import intervals
from models.grouped_regression import pooling


def errors(model: tf.keras.Model, dataset: tf.data.Dataset) -> Tuple[np.ndarray, np.ndarray]:
  """(label - prediction, group id) of every row of one pass over `dataset`."""
  err, grp = [], []
  for features, label in dataset:
    pred = model(features, training=False)
    err.append((tf.reshape(tf.cast(label, tf.float32), [-1]) - tf.reshape(pred, [-1])).numpy())
    grp.append(tf.reshape(features[fk.GROUP_KEY], [-1]).numpy())
  if not err:
    return np.zeros(0), np.zeros(0, np.int64)
  return np.concatenate(err).astype(np.float64), np.concatenate(grp).astype(np.int64)


def group_sums(err: np.ndarray, group: np.ndarray, num_groups: int):
  """(sse [G], rows [G])."""
  return (np.bincount(group, err ** 2, minlength=num_groups)[:num_groups],
          np.bincount(group, minlength=num_groups)[:num_groups].astype(np.float64))


def fit(model: tf.keras.Model, train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset,
        num_groups: int, level: float,
        refit: Optional[pooling.RefitResult] = None) -> Tuple[intervals.IntervalTable, dict]:
  """(calibrated IntervalTable, per-group stats) from one unshuffled pass over each split."""
  tr_err, tr_grp = errors(model, train_ds)
  sse, rows = group_sums(tr_err, tr_grp, num_groups)
  resid_var = intervals.shrunk_residual_variance(sse, rows)
  head_var = np.zeros(num_groups)
  if refit is not None and refit.posterior_cov is not None:
    scale = float(model.get_layer("to_label").scale)
    head_var = intervals.head_variance(refit.posterior_cov, refit.second_moment) * scale ** 2
  ev_err, ev_grp = errors(model, eval_ds)
  table = intervals.calibrate(np.sqrt(resid_var + head_var), rows, ev_err, ev_grp, level)
  return table, {"rows": rows, "resid_sd": np.sqrt(resid_var), "head_sd": np.sqrt(head_var)}


def effects(model: tf.keras.Model, refit: Optional[pooling.RefitResult],
            table: intervals.IntervalTable, per_group: dict, labels, fallback):
  """Group-effects rows (group_effects.table) in label units. Without an EB refit (variants
  without group heads) the shifts are NaN; counts, residual and interval sd are still there."""
  from models.grouped_regression import group_effects  # pylint: disable=g-import-not-at-top
  g_count = len(labels)
  nan = np.full(g_count, np.nan)
  intercept, intercept_sd, slope_norm, shrink = nan, nan, nan, nan
  if refit is not None and refit.delta is not None:
    scale = float(model.get_layer("to_label").scale)
    col_sd = np.sqrt(np.maximum(np.diag(refit.second_moment)[:-1], 0.0))
    intercept = refit.delta[:, -1] * scale
    intercept_sd = np.sqrt(refit.posterior_cov[:, -1, -1]) * scale
    slope_norm = np.linalg.norm(refit.delta[:, :-1] * col_sd[None], axis=1) * scale
    shrink = refit.shrinkage
  fb = int(np.argmax(fallback)) if np.any(fallback) else None
  return group_effects.table(labels, per_group["rows"], intercept, intercept_sd, slope_norm,
                             shrink, per_group["resid_sd"], table.sd, fallback_group=fb)
