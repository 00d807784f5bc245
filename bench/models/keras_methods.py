"""The pipeline's own Keras variants (model.build_model + trainer.fit), on one CV fold."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from bench.models.peers import FoldSplit
from models.grouped_regression import model as model_lib
from models.grouped_regression import piecewise
from models.grouped_regression import trainer
from pipeline.config import PipelineConfig

VERBOSE = 0


def hparams(cfg: PipelineConfig, variant: str, **overrides: Any) -> model_lib.Hparams:
  return model_lib.Hparams.from_dict({**dataclasses.asdict(cfg.model), "variant": variant,
                                      **overrides})


def model_inputs(cfg: PipelineConfig, s: FoldSplit) -> model_lib.ModelInputs:
  """Label stats from the inner training rows, as run_fn takes them from the train split."""
  d = cfg.dataset
  return model_lib.ModelInputs(
      numeric=list(d.numeric_features),
      categorical=dict(zip(d.categorical_features, s.vocab_sizes)),
      num_groups=s.num_groups, label_mean=float(np.mean(s.inner.y)),
      label_std=float(max(np.std(s.inner.y), 1e-6)),
      numeric_bins=piecewise.width(cfg.model.numeric_bins))


def as_inputs(features: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  return {k: np.asarray(v).reshape(len(v), -1) for k, v in features.items()}


def fit_predict(cfg: PipelineConfig, variant: str, s: FoldSplit,
                overrides: Optional[Dict[str, Any]] = None) -> np.ndarray:
  """Trains `variant` with early stopping on the validation rows; predicts the test rows.
  `overrides` replace fields of the config's model section (e.g. epochs for the benchmark)."""
  tf.keras.backend.clear_session()
  if "numeric_bins" in (overrides or {}):
    raise ValueError("model.numeric_bins changes the features (bench/models/prep.py): set it in "
                     "the dataset's config or its `overrides`, not in model_overrides")
  m = dataclasses.replace(cfg.model, **(overrides or {}))
  cfg = dataclasses.replace(cfg, model=m)
  hp = hparams(cfg, variant, seed=m.seed + s.seed)
  model = model_lib.build_model(model_inputs(cfg, s), hp)
  train_ds = trainer.dataset_from_arrays(s.inner.keras, s.inner.y, m.batch_size, seed=s.seed)
  val_ds = trainer.dataset_from_arrays(s.val.keras, s.val.y, 1024, shuffle=False)
  refit_ds = (trainer.dataset_from_arrays(s.inner.keras, s.inner.y, 1024, shuffle=False)
              if hp.head_refit else None)
  trainer.fit(model, train_ds, val_ds, epochs=m.epochs, patience=m.patience, verbose=VERBOSE,
              refit_ds=refit_ds)
  # One eager call on the whole test set: no predict_function to trace.
  return model(as_inputs(s.test.keras), training=False).numpy().reshape(-1)
