"""Fold-wise features in NumPy, the way preprocessing_fn computes them in the Transform graph.

Fitted on the training fold only: z-scored numerics (missing -> train mean -> 0) and, with
model.numeric_bins, their piecewise-linear encodings (exact quantile edges), vocabulary
indices for categoricals (most frequent first, unseen -> the OOV index), group ids from
components.grouping.fitting. Keras inputs are keyed like models/grouped_regression/features.py.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np
import pandas as pd

from components.grouping import fitting
from models.grouped_regression import features as fk
from models.grouped_regression import piecewise
from pipeline.config import PipelineConfig


@dataclasses.dataclass
class FoldData:
  """One split of one fold, in every form the methods need."""
  keras: Dict[str, np.ndarray]       # fk keys -> [n] arrays (incl. group_id)
  numeric_z: np.ndarray              # [n, numeric] z-scores, missing -> 0
  numeric_raw: np.ndarray            # [n, numeric] raw values (NaN kept; for trees)
  categorical: np.ndarray            # [n, categorical] vocabulary indices
  group: np.ndarray                  # [n] int64 group ids
  y: np.ndarray                      # [n] label

  def take(self, idx: np.ndarray) -> "FoldData":
    return FoldData(keras={k: v[idx] for k, v in self.keras.items()},
                    numeric_z=self.numeric_z[idx], numeric_raw=self.numeric_raw[idx],
                    categorical=self.categorical[idx], group=self.group[idx], y=self.y[idx])


@dataclasses.dataclass
class FoldTransform:
  """Everything fitted on the training fold."""
  mean: np.ndarray
  std: np.ndarray
  edges: List[np.ndarray]            # per numeric: piecewise-linear edges (model.numeric_bins)
  vocabularies: List[List[str]]
  grouping: fitting.Grouping

  @property
  def vocab_sizes(self) -> List[int]:
    return [len(v) + 1 for v in self.vocabularies]      # + the OOV bucket


def _numeric(frame: pd.DataFrame, cols: List[str]) -> np.ndarray:
  out = np.empty((len(frame), len(cols)))
  for j, c in enumerate(cols):
    try:
      out[:, j] = pd.to_numeric(frame[c], errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError) as e:
      raise ValueError(f"numeric feature '{c}' has a non-numeric value: {e}") from None
  return out


def _strings(frame: pd.DataFrame, col: str) -> np.ndarray:
  return frame[col].fillna("").astype(str).to_numpy()


def fit(cfg: PipelineConfig, train: pd.DataFrame) -> FoldTransform:
  d, g = cfg.dataset, cfg.grouping
  x = _numeric(train, d.numeric_features)
  mean = np.nanmean(x, axis=0)
  std = np.nanstd(np.where(np.isnan(x), mean, x), axis=0)
  vocabs = []
  for c in d.categorical_features:
    counts = pd.Series(_strings(train, c)).value_counts(sort=False)
    vocabs.append(sorted(counts.index, key=lambda v: (-counts[v], v)))
  if g.mode == "kmeans":
    grouping = fitting.fit_kmeans(
        fitting.as_float_matrix({f: train[f].to_numpy() for f in g.features}, g.features),
        g.features, g.k_range, seed=g.seed, min_group_share=g.min_group_share,
        silhouette_sample=g.silhouette_sample)
  else:
    grouping = fitting.fit_apriori(_strings(train, g.column), g.column, min_count=g.min_count)
  bins = piecewise.width(cfg.model.numeric_bins)
  edges = [piecewise.edges_numpy(x[:, j], bins) for j in range(x.shape[1])] if bins else []
  return FoldTransform(mean=mean, std=std, edges=edges, vocabularies=vocabs, grouping=grouping)


def apply(cfg: PipelineConfig, t: FoldTransform, frame: pd.DataFrame) -> FoldData:
  d, g = cfg.dataset, cfg.grouping
  raw = _numeric(frame, d.numeric_features)
  z = np.where(np.isnan(raw), 0.0, (raw - t.mean) / np.where(t.std > 0, t.std, 1.0))
  cats = np.zeros((len(frame), len(d.categorical_features)), np.int64)
  for j, (c, vocab) in enumerate(zip(d.categorical_features, t.vocabularies)):
    index = {v: i for i, v in enumerate(vocab)}
    cats[:, j] = [index.get(v, len(vocab)) for v in _strings(frame, c)]
  if g.mode == "kmeans":
    groups = fitting.assign(t.grouping, {f: frame[f].to_numpy(np.float64) for f in g.features})
  else:
    groups = fitting.assign(t.grouping, {g.column: _strings(frame, g.column)})
  keras = {fk.numeric_key(n): z[:, j].astype(np.float32) for j, n in enumerate(d.numeric_features)}
  for j, (n, e) in enumerate(zip(d.numeric_features, t.edges)):
    imputed = np.where(np.isnan(raw[:, j]), t.mean[j], raw[:, j])
    keras[fk.piecewise_key(n)] = piecewise.encode_numpy(imputed, e)
  keras.update({fk.categorical_key(n): cats[:, j] for j, n in enumerate(d.categorical_features)})
  keras[fk.GROUP_KEY] = groups.astype(np.int64)
  y = pd.to_numeric(frame[d.label]).to_numpy(np.float64)
  return FoldData(keras=keras, numeric_z=z, numeric_raw=raw, categorical=cats, group=groups, y=y)


def design_matrix(data: FoldData, vocab_sizes: List[int]) -> np.ndarray:
  """Linear models' design: z-scored numerics + one-hot categoricals, the most frequent level
  (index 0) and the OOV index as the reference, so an intercept keeps it full rank."""
  parts = [data.numeric_z]
  for j, size in enumerate(vocab_sizes):
    levels = np.arange(1, size - 1)
    parts.append((data.categorical[:, j:j + 1] == levels[None, :]).astype(np.float64))
  return np.concatenate(parts, axis=1) if parts else np.zeros((len(data.y), 0))
