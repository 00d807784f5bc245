"""run_fn / input_fn for the TFX Trainer (found as models.grouped_regression.trainer.run_fn).

custom_config (set by the pipeline from the project config): numeric_features,
categorical_features, label, model (hyperparameters), and grouping_uri (added by GroupedTrainer).

model.variant picks the candidates (auto.py): `auto` trains multihead (z-scores, and with
piecewise-linear bins when the transform emits them) and boosted, every neural variant tries its
encodings; all stop early on the eval split and the lowest eval RMSE is exported. The choice and
every candidate's eval RMSE go to <serving model>/assets.extra/model_choice.json.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.grouping import store
from models.grouped_regression import auto
from models.grouped_regression import boosted
from models.grouped_regression import features as fk
from models.grouped_regression import group_effects
from models.grouped_regression import group_labels
from models.grouped_regression import keras_intervals
from models.grouped_regression import model as model_lib
from models.grouped_regression import piecewise
from models.grouped_regression import pooling
from models.grouped_regression import signatures

log = logging.getLogger(__name__)
_LABEL_STATS_MAX_ROWS = 1_000_000
CHOICE_FILE = os.path.join("assets.extra", "model_choice.json")   # inside the SavedModel dir
# Rows per batch of every pass that only reads a split (label statistics, validation, evaluation,
# the refit's and the intervals' per-group sums, the boosted trunk's arrays). Their results do
# not depend on the batch size but their cost is mostly per batch (a Python step, a NumPy sum of
# [groups, p, p]), so they do not use model.batch_size, an SGD setting: at 64 rows, a 100k-row
# train split is 1,100 steps per pass instead of 70.
READ_BATCH_SIZE = 1024
# Below this many train rows, the read-only passes (every epoch's validation, the evaluations,
# the refits, the intervals, the boosted trunk's arrays: ~60 passes in `auto`) parse each split
# once and replay it from memory (tf.data cache): the same batches in the same order, so the
# same numbers. ~0.5 KB a row with piecewise bins on Ames: ~100 MB at the cap. Above it every
# pass streams the TFRecords as before (bounded memory on big data).
CACHE_MAX_ROWS = 200_000

# TFXIO's reader interleaves the split's shards; with any num_parallel_calls (its default is
# AUTOTUNE) tf.data hands every record across threads, ~20 us a record here: 12.9 ms of every
# 512-row batch on a 100k-row split, ten times the training step itself. None interleaves the
# shards in the consuming thread: 2.6 ms a batch, parsing included, the same records, and for a
# one-shard split the same order (tests/models/test_input_fn.py).
READER_THREADS = None


def input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
             tf_transform_output: tft.TFTransformOutput, batch_size: int,
             num_epochs: Optional[int] = 1, shuffle: bool = True) -> tf.data.Dataset:
  """(features, label) batches of transformed examples."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=fk.LABEL_KEY,
                                     num_epochs=num_epochs, shuffle=shuffle, shuffle_seed=0,
                                     reader_num_threads=READER_THREADS),
      tf_transform_output.transformed_metadata.schema)


def label_stats(dataset: tf.data.Dataset, max_rows: int = _LABEL_STATS_MAX_ROWS
                ) -> Tuple[float, float, int]:
  """Mean and std of the label over the training data (its first max_rows rows, if more), and
  the rows read (the split's size when it has fewer than max_rows)."""
  n, s, ss = 0, 0.0, 0.0
  for _, y in dataset:
    y = y.numpy().astype(np.float64).reshape(-1)
    n, s, ss = n + y.size, s + y.sum(), ss + (y ** 2).sum()
    if n >= max_rows:
      break
  if n == 0:
    raise ValueError("the transformed train split has no rows")
  mean = s / n
  return float(mean), float(max(np.sqrt(max(ss / n - mean ** 2, 0.0)), 1e-6)), n


def model_inputs(cfg: Dict, tf_transform_output: tft.TFTransformOutput, num_groups: int,
                 label_mean: float, label_std: float, encoding: str = "piecewise"
                 ) -> model_lib.ModelInputs:
  """encoding "zscore" leaves the piecewise-linear inputs out even when the transform emits them."""
  cats = {n: tf_transform_output.vocabulary_size_by_name(fk.vocab_name(n)) + 1
          for n in cfg["categorical_features"]}
  return model_lib.ModelInputs(numeric=list(cfg["numeric_features"]), categorical=cats,
                               num_groups=num_groups, label_mean=label_mean,
                               label_std=label_std,
                               numeric_bins=(piecewise.width(cfg.get("numeric_bins"))
                                             if encoding == "piecewise" else 0))


def dataset_from_arrays(features: Dict[str, np.ndarray], labels: np.ndarray, batch_size: int,
                        shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
  """(features, label) batches from in-memory arrays keyed like features.py: the same element
  structure input_fn yields ([batch, width] per feature, [batch, 1] label), for tests and
  benchmarks."""
  cols = {k: tf.constant(np.asarray(v).reshape(len(labels), -1)) for k, v in features.items()}
  y = tf.constant(np.asarray(labels, np.float32).reshape(-1, 1))
  ds = tf.data.Dataset.range(int(y.shape[0]))
  if shuffle:
    ds = ds.shuffle(int(y.shape[0]), seed=seed, reshuffle_each_iteration=True)
  # One gather per batch: far cheaper than slicing a dict of tensors row by row.
  return ds.batch(batch_size).map(
      lambda i: ({k: tf.gather(v, i) for k, v in cols.items()}, tf.gather(y, i))
  ).prefetch(tf.data.AUTOTUNE)


def read_once(stream: Callable[[List[str], bool], tf.data.Dataset]
              ) -> Callable[[List[str], bool], tf.data.Dataset]:
  """`stream` (files, shuffle) -> dataset, with each split's unshuffled dataset parsed on its
  first full pass and replayed from memory after (one tf.data cache per split, shared by every
  caller); shuffled SGD datasets still stream, reshuffled each epoch."""
  cached: Dict[tuple, tf.data.Dataset] = {}

  def data(files: List[str], shuffle: bool) -> tf.data.Dataset:
    if shuffle:
      return stream(files, True)
    key = tuple(files)
    if key not in cached:
      cached[key] = stream(files, False).cache()
    return cached[key]
  return data


def capped_rows(dataset: tf.data.Dataset, max_rows: int, batch_size: int, seed: int,
                what: str, rows: Optional[int] = None) -> tf.data.Dataset:
  """`dataset` ((features, label) batches), or, if it holds more than max_rows rows (> 0), a
  seeded Bernoulli sample of about max_rows of them, rebatched: for learners that load their
  training rows into memory (model.in_memory_max_rows). `rows`: the dataset's row count if
  already known; otherwise counting costs one streaming pass."""
  if max_rows <= 0:
    return dataset
  if rows is None:
    rows = boosted.count_rows(dataset)
  if rows <= max_rows:
    return dataset
  rate = max_rows / rows
  log.info("%s: fitting on a Bernoulli sample (rate %.4g, ~%d rows) of the %d train rows "
           "(model.in_memory_max_rows=%d)", what, rate, max_rows, rows, max_rows)
  keep = lambda i, row: tf.random.stateless_uniform([], seed=tf.stack(
      [tf.constant(seed, tf.int64), i])) < rate
  return (dataset.unbatch().enumerate().filter(keep).map(lambda i, row: row)
          .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def fit(model: tf.keras.Model, train_ds, eval_ds, *, epochs: int, patience: int,
        steps_per_epoch: Optional[int] = None, log_dir: Optional[str] = None, verbose: int = 2,
        refit_ds: Optional[tf.data.Dataset] = None):
  """Training loop shared by run_fn and the benchmarks: early stopping on the eval split
  (val_loss, best weights restored), so `epochs` is a ceiling and `patience` decides.

  With `refit_ds` (one unshuffled pass over the training rows), a multihead model's group
  deltas are then re-solved in closed form with the pooling strength chosen on `eval_ds`
  (pooling.refit_group_heads); other variants ignore it.
  """
  callbacks = [tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                restore_best_weights=True)]
  if log_dir:
    callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
  history = model.fit(train_ds, validation_data=eval_ds, epochs=epochs,
                      steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
  if refit_ds is not None:
    history.refit = pooling.refit_group_heads(model, refit_ds, eval_ds)
  return history


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the configured variant's candidates, exports the one with the lowest eval RMSE
  (serving_default / serving_raw / transform_features) and records the choice."""
  cfg = fn_args.custom_config
  if cfg["model"].get("deterministic", True):  # cost measured by bench/determinism.py
    tf.config.experimental.enable_op_determinism()
  batch_size = int(cfg["model"].get("batch_size", 64))
  read_batch = max(batch_size, READ_BATCH_SIZE)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  grouping = store.load(cfg["grouping_uri"])
  # shuffled: SGD batches of model.batch_size; unshuffled: a read-only pass in large batches
  stream = lambda files, shuffle: input_fn(files, fn_args.data_accessor, tft_output,
                                           batch_size if shuffle else read_batch, shuffle=shuffle)
  mean, std, rows = label_stats(stream(fn_args.train_files, False))
  data = read_once(stream) if rows < CACHE_MAX_ROWS else stream
  names = auto.candidates(cfg["model"].get("variant", "multihead"),
                          piecewise.width(cfg.get("numeric_bins")))
  trained, record = {}, {}
  for name in names:
    t0 = time.perf_counter()
    variant, encoding = auto.split(name)
    if variant == auto.BOOSTED:
      in_memory = int(cfg["model"].get("in_memory_max_rows") or 0)
      # label_stats read the whole split unless it stopped at its cap: then count again
      known = rows if rows < _LABEL_STATS_MAX_ROWS else None
      model, result = boosted.fit(
          data(fn_args.train_files, False), data(fn_args.eval_files, False),
          trunk_train_ds=capped_rows(data(fn_args.train_files, False), in_memory,
                                     read_batch, seed=int(cfg["model"].get("seed", 7)),
                                     what="boosted trunk", rows=known),
          numeric=list(cfg["numeric_features"]), categorical=list(cfg["categorical_features"]),
          num_groups=grouping.num_groups, label_mean=mean, label_std=std,
          seed=int(cfg["model"].get("seed", 7)))
      rmse, refit = result.eval_rmse, None
    else:
      model, refit = train_keras(fn_args, cfg, variant, encoding, tft_output,
                                 grouping.num_groups, mean, std, data)
      rmse = float(model.evaluate(data(fn_args.eval_files, False), verbose=0,
                                  return_dict=True)["rmse"])
    trained[name] = (model, refit)
    record[name] = {"eval_rmse": rmse, "train_seconds": round(time.perf_counter() - t0, 1)}
    log.info("candidate %s: eval RMSE %.5g (%.0fs)", name, rmse, record[name]["train_seconds"])
  best = auto.choose({k: v["eval_rmse"] for k, v in record.items()})
  model, refit = trained[best]
  extras = interval_outputs(cfg, fn_args, model, grouping, data, refit)
  if auto.split(best)[0] == auto.BOOSTED:
    boosted.export(model, tft_output, fn_args.serving_model_dir, label_key=cfg["label"],
                   extras=extras)
  else:
    signatures.export(model, tft_output, fn_args.serving_model_dir, label_key=cfg["label"],
                      extras=extras)
  write_choice(fn_args.serving_model_dir, cfg["model"].get("variant", "multihead"), best, record)


def write_choice(model_dir: str, variant: str, chosen: str, candidates: Dict) -> None:
  """model_choice.json in the SavedModel's assets.extra (TF Serving ignores it)."""
  path = os.path.join(model_dir, CHOICE_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump({"variant": variant, "chosen": chosen, "split": "eval", "metric": "rmse",
               "candidates": candidates}, f, indent=1)
  log.info("model %s: kept %s (eval RMSE %s)", variant, chosen,
           {k: round(v["eval_rmse"], 5) for k, v in candidates.items()})


def read_choice(model_dir: str) -> Optional[Dict]:
  """The model_choice.json run_fn wrote, or None (a model from before it existed)."""
  path = os.path.join(model_dir, CHOICE_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def train_keras(fn_args, cfg: Dict, variant: str, encoding: str, tft_output, num_groups: int,
                mean: float, std: float, data):
  """One neural candidate: early stopping on eval, then the EB head refit (multihead).
  Returns (model, the refit's RefitResult or None)."""
  hp = model_lib.Hparams.from_dict({**cfg["model"], "variant": variant})
  spec = model_inputs(cfg, tft_output, num_groups, mean, std, encoding)
  log.info("training %s (%s): %d groups, label mean %.4f std %.4f", variant, encoding,
           spec.num_groups, mean, std)
  model = model_lib.build_model(spec, hp)
  train_ds = data(fn_args.train_files, True)
  steps = int(cfg["model"].get("train_steps") or 0) or None
  if steps:
    train_ds = train_ds.repeat()
  refit_ds = data(fn_args.train_files, False) if hp.head_refit else None
  history = fit(model, train_ds, data(fn_args.eval_files, False),
                epochs=int(cfg["model"]["epochs"]), patience=int(cfg["model"]["patience"]),
                steps_per_epoch=steps,
                log_dir=os.path.join(fn_args.model_run_dir, f"{variant}_{encoding}"),
                refit_ds=refit_ds)
  return model, getattr(history, "refit", None)


def interval_outputs(cfg: Dict, fn_args, model, grouping, data, refit) -> signatures.GroupOutputs:
  """Fits the interval table of the kept candidate (calibrated on eval), writes the group-effects
  table next to the model (<model artifact>/group_effects/), returns the serving graph's
  per-group outputs. `model` is any callable on transformed features (Keras or boosted)."""
  level = float(cfg["model"].get("interval", 0.9))
  table, per_group = keras_intervals.fit(model, data(fn_args.train_files, False),
                                         data(fn_args.eval_files, False), grouping.num_groups,
                                         level, refit)
  labels, fallback = group_labels.labels_and_fallback(grouping)
  rows = keras_intervals.effects(model, refit, table, per_group, labels, fallback)
  path = group_effects.write(rows, effects_dir(fn_args.serving_model_dir))
  log.info("group-effects table: %s; interval band scales %s", path, table.band_scale)
  return signatures.GroupOutputs(table.sd, table.z, labels, fallback,
                                 cfg.get("label_transform", "none"))


def effects_dir(serving_model_dir: str) -> str:
  """<model artifact>/group_effects: next to Format-Serving, outside the SavedModel."""
  return group_effects.model_dir(os.path.dirname(serving_model_dir.rstrip("/")))
