"""`boosted` variant: a TF-DF gradient-boosted trunk + per-group linear heads, pooled (EB).

Why: trees find interactions and thresholds a small MLP on z-scores misses; the group heads then
correct each group's level and slopes the way `multihead` does. The trunk sees the group id as a
categorical input (like LightGBM with the group) when that helps: a trunk that has fitted the
groups in-sample leaves training residuals with little group signal, so the heads then learn
little. Both trunks (with and without the group) are trained and the eval split keeps one; the
heads handle what the trees cannot spend splits on (a small group's shift and slopes).

Head input phi = [trunk output, the first MAX_HEAD_FEATURES z-scored numerics, 1] on the
standardised label scale. With the trunk fixed, the heads are exactly pooling.py's problem: per
group sufficient statistics of (phi, residual), block-wise prior strengths by type-II ML on the
training rows, a GLS shift of the shared head, and the eval split picks between that, plain
ridge deltas and no deltas. The trunk's early stopping uses the eval split too (TF-DF's
validation dataset); the test split is never seen.

A trained TF-DF model cannot be called on symbolic Keras inputs, so the export is a tf.Module
(BoostedServing) with the same three signatures as signatures.export. A process that loads it
must `import tensorflow_decision_forests` first (it registers the inference ops).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from models.grouped_regression import autograph_rules  # noqa: F401  (installs the rule)
from models.grouped_regression import features as fk
from models.grouped_regression import pooling
from models.grouped_regression import signatures

log = logging.getLogger(__name__)

MAX_HEAD_FEATURES = 8       # raw numerics beside the trunk output in each group's head
NUM_TREES = 500             # a ceiling: early stopping on the eval split decides
SHRINKAGE = 0.1
MAX_DEPTH = 6
# YDF's trainer splits each node's search over its threads; on small data the hand-offs cost
# more than they save (bench/results/boosted_threads.md, 2 cores: 2 threads / 1 = 1.83x the fit
# time at 2k rows, 1.07x at 5k, 0.84x at 10k, 0.60x at 40k), so a second thread starts at 10k
# rows. One thread and several break split ties differently, so the trees can differ a little
# (same validation RMSE to 3-4 digits); any count above one grows the same trees. With the
# count set from the rows, a small data set gets the same trees on every machine.
ROWS_PER_THREAD = 5_000
MAX_THREADS = 32            # TF-DF's own ceiling when it picks the count itself


@dataclasses.dataclass
class BoostedResult:
  choice: str                      # pooling candidate kept on the eval split
  eval_rmse: float                 # label units, eval split, after the heads
  eval_rmse_trunk: float           # label units, eval split, trunk alone
  num_trees: int
  with_group: bool                 # the trunk kept sees the group id


def _tfdf():
  import tensorflow_decision_forests as tfdf  # heavy import: only when this variant trains
  return tfdf


def trunk_features(features: Dict[str, tf.Tensor], with_group: bool) -> Dict[str, tf.Tensor]:
  """The trunk's inputs: every transformed feature as [batch] (piecewise encodings dropped:
  trees need no basis), the group id only if `with_group`."""
  return {k: tf.reshape(v, [-1]) for k, v in features.items()
          if not k.endswith(fk.piecewise_key("")) and (with_group or k != fk.GROUP_KEY)}


def training_threads(rows: int, cpus: Optional[int] = None) -> int:
  """Threads for the trunk's training: one per ROWS_PER_THREAD training rows, at least one, at
  most the machine's CPUs (TF-DF's default is every CPU, whatever the data size)."""
  cpus = min(cpus or os.cpu_count() or 1, MAX_THREADS)
  return max(1, min(cpus, int(rows) // ROWS_PER_THREAD))


def count_rows(dataset: tf.data.Dataset) -> int:
  """Rows in a dataset of (features, label) batches: one streaming pass."""
  return int(dataset.reduce(tf.constant(0, tf.int64),
                            lambda n, b: n + tf.cast(tf.shape(b[1])[0], tf.int64)))


def build_trunk(categorical_keys: List[str], seed: int, with_group: bool, verbose: int = 0,
                num_threads: Optional[int] = None):
  tfdf = _tfdf()
  usage = [tfdf.keras.FeatureUsage(k, semantic=tfdf.keras.FeatureSemantic.CATEGORICAL)
           for k in categorical_keys + ([fk.GROUP_KEY] if with_group else [])]
  return tfdf.keras.GradientBoostedTreesModel(
      task=tfdf.keras.Task.REGRESSION, features=usage, exclude_non_specified_features=False,
      num_trees=NUM_TREES, shrinkage=SHRINKAGE, max_depth=MAX_DEPTH, random_seed=seed,
      early_stopping="LOSS_INCREASE", verbose=verbose, num_threads=num_threads)


def _head_columns(numeric: List[str]) -> List[str]:
  return [fk.numeric_key(n) for n in numeric[:MAX_HEAD_FEATURES]]


class BoostedServing(tf.Module):
  """Trunk + gathered group heads: pred = mean + std * phi . (w + dw[g])."""

  def __init__(self, trunk, with_group: bool, head_cols: List[str], w: np.ndarray,
               dw: np.ndarray, label_mean: float, label_std: float):
    super().__init__()
    self.trunk = trunk
    self.with_group = bool(with_group)
    self.head_cols = list(head_cols)
    self.w = tf.Variable(w.astype(np.float32), trainable=False, name="shared_head")
    self.dw = tf.Variable(dw.astype(np.float32), trainable=False, name="group_deltas")
    self.label_mean = float(label_mean)
    self.label_std = float(label_std)

  def phi(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    """[batch, p] head input on the standardised scale."""
    f = tf.reshape(tf.cast(self.trunk(trunk_features(features, self.with_group)), tf.float32),
                   [-1, 1])
    cols = [(f - self.label_mean) / self.label_std]
    cols += [tf.reshape(tf.cast(features[k], tf.float32), [-1, 1]) for k in self.head_cols]
    cols.append(tf.ones_like(f))
    return tf.concat(cols, axis=1)

  def __call__(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """[batch, 1] prediction in label units from transformed features. `training` is accepted
    (and ignored: the forest is frozen) so callers treat this like a Keras model."""
    del training
    phi = self.phi(features)
    g = tf.clip_by_value(tf.reshape(tf.cast(features[fk.GROUP_KEY], tf.int32), [-1]), 0,
                         tf.shape(self.dw)[0] - 1)
    w = self.w[None, :] + tf.gather(self.dw, g)
    out = tf.reduce_sum(phi * w, axis=1, keepdims=True)
    return self.label_mean + self.label_std * out


def _stats(module: BoostedServing, dataset: tf.data.Dataset, num_groups: int
           ) -> pooling.GroupStats:
  """Per-group sums of phi phi^T, phi r, r^2 with r the residual of the shared head."""
  w0 = module.w.numpy().astype(np.float64)
  p = w0.size
  a, c, s = np.zeros((num_groups, p, p)), np.zeros((num_groups, p)), np.zeros(num_groups)
  for features, label in dataset:
    phi = module.phi(features).numpy().astype(np.float64)
    g = np.asarray(features[fk.GROUP_KEY]).reshape(-1).astype(np.int64)
    y = (np.asarray(label, np.float64).reshape(-1) - module.label_mean) / module.label_std
    r = y - phi @ w0
    np.add.at(a, g, phi[:, :, None] * phi[:, None, :])
    np.add.at(c, g, phi * r[:, None])
    np.add.at(s, g, r * r)
  return pooling.GroupStats(a, c, s)


def fit(train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, *, numeric: List[str],
        categorical: List[str], num_groups: int, label_mean: float, label_std: float,
        seed: int = 7, verbose: int = 0, trunk_train_ds: Optional[tf.data.Dataset] = None,
        train_rows: Optional[int] = None):
  """(BoostedServing, BoostedResult): of the trunks with and without the group (each with its
  pooled heads), the one with the lower eval-split RMSE. The datasets yield (transformed
  features, label) batches, one pass each (not repeated); the eval split drives the trunk's
  early stopping and every choice. `trunk_train_ds` (default train_ds): the rows the trunk
  fits on, which TF-DF holds in memory (trainer.capped_rows samples them above
  model.in_memory_max_rows); the heads' statistics stream over every row of train_ds.
  `train_rows` (the trunk's training rows; counted when not given) sets its thread count
  (training_threads)."""
  if train_rows is None:
    train_rows = count_rows(train_ds if trunk_train_ds is None else trunk_train_ds)
  best = None
  for with_group in (False, True):
    fitted = fit_one(train_ds, eval_ds, numeric=numeric, categorical=categorical,
                     num_groups=num_groups, label_mean=label_mean, label_std=label_std,
                     seed=seed, with_group=with_group, verbose=verbose,
                     trunk_train_ds=trunk_train_ds, train_rows=train_rows)
    if best is None or fitted[1].eval_rmse < best[1].eval_rmse:
      best = fitted
  return best


def fit_one(train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, *, numeric: List[str],
            categorical: List[str], num_groups: int, label_mean: float, label_std: float,
            seed: int, with_group: bool, verbose: int = 0,
            trunk_train_ds: Optional[tf.data.Dataset] = None, train_rows: Optional[int] = None):
  """One trunk (early-stopped on eval) and its group heads (pooling.py, chosen on eval)."""
  if train_rows is None:
    train_rows = count_rows(train_ds if trunk_train_ds is None else trunk_train_ds)
  trunk = build_trunk([fk.categorical_key(n) for n in categorical], seed, with_group, verbose,
                      num_threads=training_threads(train_rows))
  as_trunk = lambda x, y: (trunk_features(x, with_group), tf.reshape(y, [-1]))
  trunk.fit((train_ds if trunk_train_ds is None else trunk_train_ds).map(as_trunk),
            validation_data=eval_ds.map(as_trunk), verbose=verbose)
  head_cols = _head_columns(numeric)
  p = len(head_cols) + 2
  w0 = np.zeros(p)
  w0[0] = 1.0                                           # the shared head starts as the trunk
  module = BoostedServing(trunk, with_group, head_cols, w0, np.zeros((num_groups, p)),
                          label_mean, label_std)
  train, held_out = _stats(module, train_ds, num_groups), _stats(module, eval_ds, num_groups)
  lam, ridge = pooling.search_strengths(train, trunk_dim=1)
  blocks = {k: v for k, v in pooling.block_index(p, 1).items() if v.size}
  shift, gls = pooling.gls_shared_and_deltas(
      train, pooling.penalty_diagonal(lam, blocks, pooling.column_scale(train)))
  zero = np.zeros((num_groups, p))
  candidates = {"ridge+shared": (shift, gls), "ridge": (np.zeros(p), ridge),
                "zero": (np.zeros(p), zero)}
  sse = {k: held_out.sse(d + sh[None, :]) for k, (sh, d) in candidates.items()}
  choice = min(sse, key=sse.get)
  shift, delta = candidates[choice]
  module.w.assign((w0 + shift).astype(np.float32))
  module.dw.assign(delta.astype(np.float32))
  n_eval = max(float(held_out.rows.sum()), 1.0)
  rmse = lambda v: float(np.sqrt(max(v, 0.0) / n_eval) * label_std)
  result = BoostedResult(choice, rmse(sse[choice]), rmse(sse["zero"]),
                         int(trunk.make_inspector().num_trees()), with_group)
  log.info("boosted (group in trunk: %s): %d trees, heads %s %s, eval RMSE %.4f (trunk alone "
           "%.4f)", with_group, result.num_trees, choice, lam, result.eval_rmse,
           result.eval_rmse_trunk)
  return module, result


def export(module: BoostedServing, tft_output, export_dir: str, label_key: str,
           extras: Optional[signatures.GroupOutputs] = None) -> None:
  """One SavedModel: serving_default (tf.Examples), serving_raw, transform_features; the same
  outputs as the Keras variants (signatures.export), intervals included when `extras` is given."""
  module.tft_layer = tft_output.transform_features_layer()
  spec = signatures.raw_serving_spec(tft_output, label_key)

  def predict(raw):
    transformed = module.tft_layer(raw)
    transformed.pop(fk.LABEL_KEY, None)
    pred = module(transformed)
    out = {fk.PREDICTION_KEY: pred,
           fk.GROUP_OUTPUT_KEY: tf.reshape(tf.cast(transformed[fk.GROUP_KEY], tf.int64), [-1, 1])}
    if extras is not None:
      out.update(signatures.group_outputs(pred, transformed[fk.GROUP_KEY], extras))
    return out

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def serve_examples(examples):
    return predict(tf.io.parse_example(examples, spec))

  # inputs named as TF would rename them ('county.name' -> 'county_name'), as signatures.export
  raw_names = {fk.raw_input_name(name): name for name in spec}
  raw_sig = {arg: tf.TensorSpec([None], spec[name].dtype, name=arg)
             for arg, name in raw_names.items()}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def transform_features(examples):
    return module.tft_layer(tf.io.parse_example(examples, tft_output.raw_feature_spec()))

  raw_fn = tf.function(
      lambda **kw: predict({raw_names[k]: signatures._as_raw_feature(v, spec[raw_names[k]])
                            for k, v in kw.items()}))
  tf.saved_model.save(module, export_dir, signatures={
      "serving_default": serve_examples.get_concrete_function(),
      "serving_raw": raw_fn.get_concrete_function(**raw_sig),
      "transform_features": transform_features.get_concrete_function(),
  })
