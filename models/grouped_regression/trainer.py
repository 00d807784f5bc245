"""run_fn / input_fn for the TFX Trainer (found as models.grouped_regression.trainer.run_fn).

custom_config (set by the pipeline from the project config): numeric_features,
categorical_features, label, model (hyperparameters), and grouping_uri (added by GroupedTrainer).
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.grouping import store
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


def input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
             tf_transform_output: tft.TFTransformOutput, batch_size: int,
             num_epochs: Optional[int] = 1, shuffle: bool = True) -> tf.data.Dataset:
  """(features, label) batches of transformed examples."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=fk.LABEL_KEY,
                                     num_epochs=num_epochs, shuffle=shuffle, shuffle_seed=0),
      tf_transform_output.transformed_metadata.schema)


def label_stats(dataset: tf.data.Dataset, max_rows: int = _LABEL_STATS_MAX_ROWS
                ) -> Tuple[float, float]:
  """Mean and std of the label over (at most max_rows of) the training data."""
  n, s, ss = 0, 0.0, 0.0
  for _, y in dataset:
    y = y.numpy().astype(np.float64).reshape(-1)
    n, s, ss = n + y.size, s + y.sum(), ss + (y ** 2).sum()
    if n >= max_rows:
      break
  if n == 0:
    raise ValueError("the transformed train split has no rows")
  mean = s / n
  return float(mean), float(max(np.sqrt(max(ss / n - mean ** 2, 0.0)), 1e-6))


def model_inputs(cfg: Dict, tf_transform_output: tft.TFTransformOutput, num_groups: int,
                 label_mean: float, label_std: float) -> model_lib.ModelInputs:
  cats = {n: tf_transform_output.vocabulary_size_by_name(fk.vocab_name(n)) + 1
          for n in cfg["categorical_features"]}
  return model_lib.ModelInputs(numeric=list(cfg["numeric_features"]), categorical=cats,
                               num_groups=num_groups, label_mean=label_mean,
                               label_std=label_std,
                               numeric_bins=piecewise.width(cfg.get("numeric_bins")))


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
  """Trains the configured variant and exports serving_default / serving_raw / transform_features."""
  cfg = fn_args.custom_config
  hp = model_lib.Hparams.from_dict(cfg["model"])
  batch_size = int(cfg["model"].get("batch_size", 64))
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  grouping = store.load(cfg["grouping_uri"])

  train_ds = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size)
  eval_ds = input_fn(fn_args.eval_files, fn_args.data_accessor, tft_output, batch_size,
                     shuffle=False)
  mean, std = label_stats(train_ds)
  spec = model_inputs(cfg, tft_output, grouping.num_groups, mean, std)
  log.info("training %s: %d groups, label mean %.4f std %.4f", hp.variant, spec.num_groups,
           mean, std)
  model = model_lib.build_model(spec, hp)
  steps = int(cfg["model"].get("train_steps") or 0) or None
  if steps:
    train_ds = train_ds.repeat()
  refit_ds = (input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size,
                       shuffle=False) if hp.head_refit else None)
  history = fit(model, train_ds, eval_ds, epochs=int(cfg["model"]["epochs"]),
                patience=int(cfg["model"]["patience"]), steps_per_epoch=steps,
                log_dir=fn_args.model_run_dir, refit_ds=refit_ds)
  extras = interval_outputs(cfg, fn_args, tft_output, model, grouping, eval_ds, batch_size,
                            getattr(history, "refit", None))
  signatures.export(model, tft_output, fn_args.serving_model_dir, label_key=cfg["label"],
                    extras=extras)


def interval_outputs(cfg: Dict, fn_args, tft_output, model, grouping, eval_ds, batch_size,
                     refit) -> signatures.GroupOutputs:
  """Fits the interval table (calibrated on eval), writes the group-effects table next to the
  model (<model artifact>/group_effects/), returns the serving graph's per-group outputs."""
  level = float(cfg["model"].get("interval", 0.9))
  train_pass = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size,
                        shuffle=False)
  table, per_group = keras_intervals.fit(model, train_pass, eval_ds, grouping.num_groups, level,
                                         refit)
  labels, fallback = group_labels.labels_and_fallback(grouping)
  rows = keras_intervals.effects(model, refit, table, per_group, labels, fallback)
  path = group_effects.write(rows, effects_dir(fn_args.serving_model_dir))
  log.info("group-effects table: %s; interval band scales %s", path, table.band_scale)
  return signatures.GroupOutputs(table.sd, table.z, labels, fallback,
                                 cfg.get("label_transform", "none"))


def effects_dir(serving_model_dir: str) -> str:
  """<model artifact>/group_effects: next to Format-Serving, outside the SavedModel."""
  return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), "group_effects")
