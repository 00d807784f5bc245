"""The pipeline's own variants on one CV fold: Keras (model.build_model + trainer.fit) and boosted
(boosted.fit). Each fit returns (test predictions, validation RMSE): the validation rows play the
pipeline's `eval` split, so encoding and `auto` choices are made on them (models/.../auto.py)."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from bench.models.peers import FoldSplit
from models.grouped_regression import auto
from models.grouped_regression import boosted
from models.grouped_regression import model as model_lib
from models.grouped_regression import piecewise
from models.grouped_regression import trainer
from pipeline.config import PipelineConfig

VERBOSE = 0


def hparams(cfg: PipelineConfig, variant: str, **overrides: Any) -> model_lib.Hparams:
  return model_lib.Hparams.from_dict({**dataclasses.asdict(cfg.model), "variant": variant,
                                      **overrides})


def model_inputs(cfg: PipelineConfig, s: FoldSplit, encoding: str = "piecewise"
                 ) -> model_lib.ModelInputs:
  """Label stats from the inner training rows, as run_fn takes them from the train split."""
  d = cfg.dataset
  return model_lib.ModelInputs(
      numeric=list(d.numeric_features),
      categorical=dict(zip(d.categorical_features, s.vocab_sizes)),
      num_groups=s.num_groups, label_mean=float(np.mean(s.inner.y)),
      label_std=float(max(np.std(s.inner.y), 1e-6)),
      numeric_bins=piecewise.width(cfg.model.numeric_bins) if encoding == "piecewise" else 0)


def as_inputs(features: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  return {k: np.asarray(v).reshape(len(v), -1) for k, v in features.items()}


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
  return float(np.sqrt(np.mean((np.asarray(y).reshape(-1) - pred.reshape(-1)) ** 2)))


def fit_candidate(cfg: PipelineConfig, candidate: str, s: FoldSplit,
                  overrides: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, float]:
  """(test predictions, validation RMSE) of one auto.candidates() name."""
  variant, encoding = auto.split(candidate)
  if variant == auto.BOOSTED:
    return fit_boosted(cfg, s)
  return fit_predict(cfg, variant, s, overrides, encoding=encoding)


def fit_boosted(cfg: PipelineConfig, s: FoldSplit) -> Tuple[np.ndarray, float]:
  tf.keras.backend.clear_session()
  d = cfg.dataset
  ds = lambda part: trainer.dataset_from_arrays(part.keras, part.y, 1024, shuffle=False)
  module, _ = boosted.fit(ds(s.inner), ds(s.val), numeric=list(d.numeric_features),
                          categorical=list(d.categorical_features), num_groups=s.num_groups,
                          label_mean=float(np.mean(s.inner.y)),
                          label_std=float(max(np.std(s.inner.y), 1e-6)),
                          seed=cfg.model.seed + s.seed)
  predict = lambda part: module(as_inputs(part.keras)).numpy().reshape(-1)
  return predict(s.test), _rmse(s.val.y, predict(s.val))


def fit_predict(cfg: PipelineConfig, variant: str, s: FoldSplit,
                overrides: Optional[Dict[str, Any]] = None, encoding: str = "piecewise"
                ) -> Tuple[np.ndarray, float]:
  """Trains `variant` with early stopping on the validation rows; (test predictions, validation
  RMSE). `overrides` replace fields of the config's model section (e.g. epochs for the
  benchmark); encoding "zscore" leaves the piecewise-linear inputs out."""
  tf.keras.backend.clear_session()
  if "numeric_bins" in (overrides or {}):
    raise ValueError("model.numeric_bins changes the features (bench/models/prep.py): set it in "
                     "the dataset's config or its `overrides`, not in model_overrides")
  m = dataclasses.replace(cfg.model, **(overrides or {}))
  cfg = dataclasses.replace(cfg, model=m)
  hp = hparams(cfg, variant, seed=m.seed + s.seed)
  model = model_lib.build_model(model_inputs(cfg, s, encoding), hp)
  train_ds = trainer.dataset_from_arrays(s.inner.keras, s.inner.y, m.batch_size, seed=s.seed)
  val_ds = trainer.dataset_from_arrays(s.val.keras, s.val.y, 1024, shuffle=False)
  refit_ds = (trainer.dataset_from_arrays(s.inner.keras, s.inner.y, 1024, shuffle=False)
              if hp.head_refit else None)
  trainer.fit(model, train_ds, val_ds, epochs=m.epochs, patience=m.patience, verbose=VERBOSE,
              refit_ds=refit_ds)
  # One eager call on the whole test set: no predict_function to trace.
  predict = lambda part: model(as_inputs(part.keras), training=False).numpy().reshape(-1)
  return predict(s.test), _rmse(s.val.y, predict(s.val))
