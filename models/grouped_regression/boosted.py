"""`boosted` variant: a gradient-boosted trunk (YDF) + per-group linear heads, pooled (EB).

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
ridge deltas and no deltas. The trunk's early stopping uses the eval split too (YDF's
validation dataset); the test split is never seen.

The trunk trains with YDF's own API on NumPy arrays read once from the transformed examples
(TF-DF's documentation: "prefer YDF for new projects"). Its Keras wrapper, used before, spent
most of the candidate's time outside the training itself: a traced collection loop per dataset
and trunk, then an inference graph per model. The trained model becomes a TF callable through
YDF's to_tensorflow_function, which runs TF-DF's inference op. The export is a tf.Module
(BoostedServing) with the same three signatures as signatures.export. A process that loads it
must `import tensorflow_decision_forests` first (it registers that op; TF Serving >= 2.11 has
it built in).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import weakref
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
# more than they save (bench/results/boosted_threads.md, 2 cores: 2 threads / 1 = 6.3x the
# training time at 2k rows, 2.0x at 10k, 1.24x at 20k, ~0.96x at 30k, 0.74x at 60k-80k), so a
# second thread starts at 30k rows. One thread and several break split ties differently, so the
# trees can differ a little (same validation RMSE to 3-4 digits); any count above one grows the
# same trees. With the count set from the rows, a small data set gets the same trees on every
# machine.
ROWS_PER_THREAD = 15_000
MAX_THREADS = 32            # TF-DF's own ceiling when it picked the count itself
LABEL_COLUMN = "__label"    # the label's column in the arrays YDF trains on


@dataclasses.dataclass
class BoostedResult:
  choice: str                      # pooling candidate kept on the eval split
  eval_rmse: float                 # label units, eval split, after the heads
  eval_rmse_trunk: float           # label units, eval split, trunk alone
  num_trees: int
  with_group: bool                 # the trunk kept sees the group id
  num_threads: int                 # the trunk's training threads (training_threads)


def _ydf():
  import ydf  # heavy import: only when this variant trains
  return ydf


def trunk_features(features: Dict[str, tf.Tensor], with_group: bool) -> Dict[str, tf.Tensor]:
  """The trunk's inputs: every transformed feature as [batch] (piecewise encodings dropped:
  trees need no basis), the group id only if `with_group`."""
  return {k: tf.reshape(v, [-1]) for k, v in features.items()
          if not k.endswith(fk.piecewise_key("")) and (with_group or k != fk.GROUP_KEY)}


def training_threads(rows: int, cpus: Optional[int] = None) -> int:
  """Threads for the trunk's training: one per ROWS_PER_THREAD training rows, at least one, at
  most the machine's CPUs (YDF's default is every CPU, whatever the data size)."""
  cpus = min(cpus or os.cpu_count() or 1, MAX_THREADS)
  return max(1, min(cpus, int(rows) // ROWS_PER_THREAD))


def count_rows(dataset: tf.data.Dataset) -> int:
  """Rows in a dataset of (features, label) batches: one streaming pass."""
  return int(dataset.reduce(tf.constant(0, tf.int64),
                            lambda n, b: n + tf.cast(tf.shape(b[1])[0], tf.int64)))


def trunk_arrays(dataset: tf.data.Dataset) -> Dict[str, np.ndarray]:
  """One pass over (features, label) batches: the trunk's columns for both trunks (group id
  included) and the label (LABEL_COLUMN) as NumPy arrays, what YDF trains on in memory."""
  cols: Dict[str, list] = {}
  for features, label in dataset:
    for k, v in trunk_features(features, with_group=True).items():
      cols.setdefault(k, []).append(v.numpy())
    cols.setdefault(LABEL_COLUMN, []).append(np.reshape(label.numpy(), [-1]).astype(np.float32))
  if not cols:
    raise ValueError("boosted trunk: the dataset has no rows")
  return {k: np.concatenate(v) for k, v in cols.items()}


def _columns(arrays: Dict[str, np.ndarray], with_group: bool) -> Dict[str, np.ndarray]:
  return {k: v for k, v in arrays.items() if with_group or k != fk.GROUP_KEY}


def build_trunk(categorical_keys: List[str], seed: int, with_group: bool,
                num_threads: Optional[int] = None):
  """The YDF learner for one trunk. Categorical inputs are vocabulary ids from the Transform:
  every id seen in training is its own category (no frequency pruning, no cap), unseen ids go
  to YDF's out-of-dictionary item, as TF-DF's Keras wrapper treated integer ids before."""
  ydf = _ydf()
  cats = categorical_keys + ([fk.GROUP_KEY] if with_group else [])
  return ydf.GradientBoostedTreesLearner(
      label=LABEL_COLUMN, task=ydf.Task.REGRESSION, include_all_columns=True,
      features=[ydf.Feature(k, ydf.Semantic.CATEGORICAL, min_vocab_frequency=1,
                            max_vocab_count=-1) for k in cats],
      num_trees=NUM_TREES, shrinkage=SHRINKAGE, max_depth=MAX_DEPTH, random_seed=seed,
      early_stopping="LOSS_INCREASE", num_threads=num_threads or training_threads(0))


def as_tf_function(model) -> tf.Module:
  """A trained YDF model as a TF callable on a dict of [batch] tensors (YDF's
  to_tensorflow_function: TF-DF's inference op, which TF Serving >= 2.11 has built in). Its
  model files live in a temporary directory until the returned module is garbage-collected;
  tf.saved_model.save copies them into the SavedModel's assets."""
  files = tempfile.mkdtemp(prefix="ydf_trunk_")
  fn = model.to_tensorflow_function(temp_dir=files)
  weakref.finalize(fn, shutil.rmtree, files, True)
  return fn


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
        seed: int = 7, verbose: int = 0, trunk_train_ds: Optional[tf.data.Dataset] = None):
  """(BoostedServing, BoostedResult): of the trunks with and without the group (each with its
  pooled heads), the one with the lower eval-split RMSE. The datasets yield (transformed
  features, label) batches, one pass each (not repeated); the eval split drives the trunk's
  early stopping and every choice. `trunk_train_ds` (default train_ds): the rows the trunk
  fits on, which YDF holds in memory (trainer.capped_rows samples them above
  model.in_memory_max_rows); the heads' statistics stream over every row of train_ds. Both
  trunks train on the same arrays, read once; their thread count (training_threads) comes
  from those rows."""
  train = trunk_arrays(train_ds if trunk_train_ds is None else trunk_train_ds)
  held_out = trunk_arrays(eval_ds)
  best = None
  for with_group in (False, True):
    fitted = _fit_one(train, held_out, train_ds, eval_ds, numeric=numeric,
                      categorical=categorical, num_groups=num_groups, label_mean=label_mean,
                      label_std=label_std, seed=seed, with_group=with_group, verbose=verbose)
    if best is None or fitted[1].eval_rmse < best[1].eval_rmse:
      best = fitted
  return best


def fit_one(train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, *, numeric: List[str],
            categorical: List[str], num_groups: int, label_mean: float, label_std: float,
            seed: int, with_group: bool, verbose: int = 0,
            trunk_train_ds: Optional[tf.data.Dataset] = None):
  """One trunk (early-stopped on eval) and its group heads (pooling.py, chosen on eval)."""
  return _fit_one(trunk_arrays(train_ds if trunk_train_ds is None else trunk_train_ds),
                  trunk_arrays(eval_ds), train_ds, eval_ds, numeric=numeric,
                  categorical=categorical, num_groups=num_groups, label_mean=label_mean,
                  label_std=label_std, seed=seed, with_group=with_group, verbose=verbose)


def _fit_one(train_arrays: Dict[str, np.ndarray], eval_arrays: Dict[str, np.ndarray],
             train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, *, numeric: List[str],
             categorical: List[str], num_groups: int, label_mean: float, label_std: float,
             seed: int, with_group: bool, verbose: int):
  threads = training_threads(train_arrays[LABEL_COLUMN].size)
  learner = build_trunk([fk.categorical_key(n) for n in categorical], seed, with_group,
                        num_threads=threads)
  trained = learner.train(_columns(train_arrays, with_group),
                          valid=_columns(eval_arrays, with_group), verbose=verbose)
  trunk = as_tf_function(trained)
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
  result = BoostedResult(choice, rmse(sse[choice]), rmse(sse["zero"]), int(trained.num_trees()),
                         with_group, threads)
  log.info("boosted (group in trunk: %s): %d trees (%d thread(s)), heads %s %s, eval RMSE %.4f "
           "(trunk alone %.4f)", with_group, result.num_trees, threads, choice, lam,
           result.eval_rmse, result.eval_rmse_trunk)
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
