"""Fitting and assignment of groups, in plain NumPy/scikit-learn (no TFX, no Beam).

The component fits on a bounded sample and assigns every row with `assign`; the Transform graph
re-implements `assign` in TensorFlow from the same numbers (see components/grouping/tf_assign.py),
so this module is the single definition of what a group is.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

KMEANS = "kmeans"
APRIORI = "apriori"


class GroupingError(ValueError):
  """The data cannot be grouped as configured; the message names the column or value."""


@dataclasses.dataclass
class KCandidate:
  k: int
  inertia: float
  silhouette: float
  min_share: float
  feasible: bool


@dataclasses.dataclass
class Grouping:
  """Everything needed to re-create the assignment without this code (see store.py)."""
  mode: str
  features: List[str]                      # kmeans: numeric columns; apriori: [column]
  num_groups: int
  # kmeans
  mean: Optional[np.ndarray] = None        # standardisation, fitted on train
  scale: Optional[np.ndarray] = None
  impute: Optional[np.ndarray] = None      # train means (raw units) for missing values
  centroids: Optional[np.ndarray] = None   # [k, d] in standardised space
  inertia: Optional[float] = None
  silhouette: Optional[float] = None
  selection: List[KCandidate] = dataclasses.field(default_factory=list)
  # apriori
  vocabulary: List[str] = dataclasses.field(default_factory=list)
  fallback_group: Optional[int] = None
  # bookkeeping
  fit_rows: int = 0
  seed: int = 0

  @property
  def k(self) -> int:
    return self.num_groups


def as_float_matrix(columns: Mapping[str, np.ndarray], features: Sequence[str]) -> np.ndarray:
  """Stacks numeric columns into [n, d] float64; a non-numeric column is an error naming it."""
  mats = []
  for name in features:
    if name not in columns:
      raise GroupingError(f"grouping feature '{name}' is not in the data "
                          f"(columns: {sorted(columns)})")
    col = np.asarray(columns[name])
    if col.dtype.kind in "OSU":
      try:
        col = col.astype(np.float64)
      except ValueError:
        bad = next((v for v in col if not _is_number(v)), col[0])
        raise GroupingError(f"grouping feature '{name}' is not numeric (value {bad!r}); "
                            "K-Means groups on numeric columns: list a categorical column as "
                            "grouping.column with mode 'apriori' instead") from None
    mats.append(col.astype(np.float64).reshape(-1))
  return np.stack(mats, axis=1) if mats else np.zeros((0, 0))


def _is_number(v) -> bool:
  try:
    float(v)
    return True
  except (TypeError, ValueError):
    return False


def _standardise_fit(x: np.ndarray):
  impute = np.nanmean(x, axis=0)
  if np.isnan(impute).any():
    raise GroupingError("a grouping feature has no non-missing value in the fit sample")
  x = np.where(np.isnan(x), impute, x)
  mean = x.mean(axis=0)
  scale = x.std(axis=0)
  scale = np.where(scale > 0, scale, 1.0)
  return impute, mean, scale


def standardise(x: np.ndarray, impute, mean, scale) -> np.ndarray:
  x = np.where(np.isnan(x), impute, x)
  return (x - mean) / scale


def fit_kmeans(x: np.ndarray, features: Sequence[str], k_values: Sequence[int], *, seed: int = 0,
               min_group_share: float = 0.0, silhouette_sample: int = 5000) -> Grouping:
  """Standardised K-Means; with several k, picks by silhouette among sizes that respect the
  minimum group share (ties, within 1e-3, go to the smaller k)."""
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top
  from sklearn.metrics import silhouette_score  # pylint: disable=g-import-not-at-top

  if x.shape[0] == 0:
    raise GroupingError("the train split is empty: nothing to fit groups on")
  impute, mean, scale = _standardise_fit(x)
  z = standardise(x, impute, mean, scale)
  distinct = len(np.unique(np.round(z, 12), axis=0))
  k_values = sorted(set(int(k) for k in k_values))
  if len(k_values) == 1 and k_values[0] > distinct:
    raise GroupingError(f"grouping.k={k_values[0]} but the train data has only {distinct} "
                        f"distinct points in {list(features)}")
  k_values = [k for k in k_values if k <= distinct] or [distinct]
  rng = np.random.default_rng(seed)
  sil_idx = rng.choice(len(z), size=min(silhouette_sample, len(z)), replace=False)

  fits, curve = {}, []
  for k in k_values:
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z)
    fits[k] = km
    shares = np.bincount(km.labels_, minlength=k) / len(z)
    sil = (float(silhouette_score(z[sil_idx], km.labels_[sil_idx]))
           if 1 < k < len(sil_idx) and len(np.unique(km.labels_[sil_idx])) > 1 else float("nan"))
    curve.append(KCandidate(k=k, inertia=float(km.inertia_), silhouette=sil,
                            min_share=float(shares.min()),
                            feasible=bool(shares.min() >= min_group_share)))
  chosen = _choose_k(curve)
  km = fits[chosen.k]
  return Grouping(mode=KMEANS, features=list(features), num_groups=chosen.k, mean=mean,
                  scale=scale, impute=impute, centroids=km.cluster_centers_.astype(np.float64),
                  inertia=chosen.inertia, silhouette=chosen.silhouette, selection=curve,
                  fit_rows=len(z), seed=seed)


def _choose_k(curve: List[KCandidate]) -> KCandidate:
  if len(curve) == 1:
    return curve[0]
  pool = [c for c in curve if c.feasible and not np.isnan(c.silhouette)] or \
         [c for c in curve if not np.isnan(c.silhouette)] or curve[:1]
  best = max(c.silhouette for c in pool) if not np.isnan(pool[0].silhouette) else None
  if best is None:
    return pool[0]
  return min((c for c in pool if c.silhouette >= best - 1e-3), key=lambda c: c.k)


def fit_apriori(values: np.ndarray, column: str, *, min_count: int = 1) -> Grouping:
  """One group per category seen at least `min_count` times in train (most frequent first);
  rarer and unseen categories share the fallback group, the last id."""
  values = np.asarray(values).astype(str)
  if values.size == 0:
    raise GroupingError("the train split is empty: nothing to fit groups on")
  cats, counts = np.unique(values, return_counts=True)
  order = np.lexsort((cats, -counts))
  vocab = [str(cats[i]) for i in order if counts[i] >= min_count and cats[i] != ""]
  if not vocab:
    raise GroupingError(f"grouping.column '{column}': no category reaches min_count={min_count}")
  return Grouping(mode=APRIORI, features=[column], num_groups=len(vocab) + 1,
                  vocabulary=vocab, fallback_group=len(vocab), fit_rows=int(values.size))


def assign(g: Grouping, columns: Mapping[str, np.ndarray]) -> np.ndarray:
  """Group id (int64) for each row. Same arithmetic as the TF graph: float64, argmin first."""
  if g.mode == KMEANS:
    z = standardise(as_float_matrix(columns, g.features), g.impute, g.mean, g.scale)
    d = ((z[:, None, :] - g.centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1).astype(np.int64)
  index: Dict[str, int] = {v: i for i, v in enumerate(g.vocabulary)}
  vals = np.asarray(columns[g.features[0]]).astype(str)
  return np.array([index.get(v, g.fallback_group) for v in vals], dtype=np.int64)
