"""Training speed: multihead vs global step time at the same trunk, and one multihead model vs
the seed article's K separate Keras models (a shared first layer) trained one after another.

Timings on a shared machine are noisy, so measurements are interleaved over several rounds and
the medians (and their ratios) are reported.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf

from bench.models import synthetic
from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer
from pipeline.config import PipelineConfig

log = logging.getLogger(__name__)


def _data(p: Dict[str, Any], groups: int, rows: int):
  df, _ = synthetic.generate({**p, "groups": groups, "rows": rows})
  names = [c for c in df.columns if c.startswith("x")]
  x = df[names].to_numpy(np.float32)
  g = df["group"].str[1:].astype(int).to_numpy(np.int64)
  return names, x, g, df["y"].to_numpy(np.float64)


def _spec(names: List[str], groups: int, y: np.ndarray) -> model_lib.ModelInputs:
  return model_lib.ModelInputs(numeric=names, categorical={}, num_groups=groups,
                               label_mean=float(y.mean()), label_std=float(y.std()))


def _features(names, x, g) -> Dict[str, np.ndarray]:
  out = {fk.numeric_key(n): x[:, j] for j, n in enumerate(names)}
  out[fk.GROUP_KEY] = g
  return out


def step_times(cfg: PipelineConfig, p: Dict[str, Any], sp: Dict[str, Any]) -> Dict[str, float]:
  """Median seconds per train step of `global` and `multihead` (same trunk, batch, data)."""
  groups = int(sp["separate_models_groups"])
  names, x, g, y = _data(p, groups, int(sp["separate_models_rows"]))
  ds = trainer.dataset_from_arrays(_features(names, x, g), y, cfg.model.batch_size)
  steps = int(np.ceil(len(y) / cfg.model.batch_size))
  times: Dict[str, List[float]] = {"global": [], "multihead": []}
  for r in range(int(sp["rounds"])):
    for variant in times:
      tf.keras.backend.clear_session()
      hp = model_lib.Hparams.from_dict({**vars(cfg.model), "variant": variant})
      model = model_lib.build_model(_spec(names, groups, y), hp)
      model.fit(ds, epochs=1, verbose=0)                       # trace + warm up
      t0 = time.perf_counter()
      model.fit(ds, epochs=int(sp["step_epochs"]), verbose=0)
      times[variant].append((time.perf_counter() - t0) / (steps * int(sp["step_epochs"])))
      log.info("speed round %d: %s %.2f ms/step", r + 1, variant, 1e3 * times[variant][-1])
  return {f"{k}_step_s": float(np.median(v)) for k, v in times.items()}


def _seed_separate_models(x, g, y, groups: int, cfg: PipelineConfig, epochs: int) -> float:
  """The article's Example 3, bugs fixed (embedding_dim defined, input shape given): one
  Sequential per group sharing the first Dense layer, compiled and fitted one after another."""
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(cfg.model.seed)
  units = list(cfg.model.trunk_units)
  t0 = time.perf_counter()
  shared = tf.keras.layers.Dense(units[0], activation="relu", name="shared_embedding")
  models = []
  for _ in range(groups):
    m = tf.keras.Sequential([tf.keras.Input(shape=(x.shape[1],)), shared,
                             *[tf.keras.layers.Dense(u, activation="relu") for u in units[1:]],
                             tf.keras.layers.Dense(1)])
    m.compile(optimizer=tf.keras.optimizers.Adam(cfg.model.learning_rate), loss="mse")
    models.append(m)
  for i, m in enumerate(models):
    rows = g == i
    m.fit(x[rows], y[rows], epochs=epochs, batch_size=cfg.model.batch_size, verbose=0)
  return time.perf_counter() - t0


def _multihead(names, x, g, y, groups: int, cfg: PipelineConfig, epochs: int) -> float:
  tf.keras.backend.clear_session()
  t0 = time.perf_counter()
  hp = model_lib.Hparams.from_dict({**vars(cfg.model), "variant": "multihead"})
  model = model_lib.build_model(_spec(names, groups, y), hp)
  ds = trainer.dataset_from_arrays(_features(names, x, g), y, cfg.model.batch_size)
  model.fit(ds, epochs=epochs, verbose=0)
  return time.perf_counter() - t0


def separate_models(cfg: PipelineConfig, p: Dict[str, Any], sp: Dict[str, Any]
                    ) -> Dict[str, float]:
  """Wall time (build + compile + fit, same epochs, same batch size) of one multihead model vs
  K separate models compiled and fitted as the seed writes them."""
  groups, epochs = int(sp["separate_models_groups"]), int(sp["separate_models_epochs"])
  names, x, g, y = _data(p, groups, int(sp["separate_models_rows"]))
  times: Dict[str, List[float]] = {"multihead": [], "seed_separate": []}
  for r in range(int(sp["separate_models_rounds"])):
    times["multihead"].append(_multihead(names, x, g, y, groups, cfg, epochs))
    times["seed_separate"].append(_seed_separate_models(x, g, y, groups, cfg, epochs))
    log.info("speed round %d: multihead %.1fs, %d separate models %.1fs", r + 1,
             times["multihead"][-1], groups, times["seed_separate"][-1])
  return {f"{k}_s": float(np.median(v)) for k, v in times.items()}
