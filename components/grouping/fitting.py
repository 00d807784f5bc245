"""What a group is: fitting (NumPy/scikit-learn) and assignment, with no TFX and no Beam.

The component fits on a bounded train sample and assigns every row with `assign`; the Transform
graph re-implements `assign` in TensorFlow from the same numbers (components/grouping/tf_assign.py),
so this module is the single definition of a group. Both sides add the squared distances one
column at a time, in the same order, in float64, so they agree bit for bit.

K-Means: numeric columns (missing -> train mean) and optional one-hot columns for categorical
features, standardised with train statistics (one-hot columns are left as 0/1), nearest
centroid, first index on ties. A-priori: one group per category seen at least `min_count`
times in train, most frequent first; rare, unseen and missing categories share the fallback
group, which is always the last id.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import threadpoolctl

from components.grouping import kselect
from components.grouping.kselect import KCandidate

log = logging.getLogger(__name__)

KMEANS = "kmeans"
APRIORI = "apriori"
ONEHOT_SEPARATOR = "="          # expanded one-hot column name: "<feature>=<category>"

__all__ = ["KMEANS", "APRIORI", "GroupingError", "KCandidate", "Grouping", "as_float_matrix",
           "fit_kmeans", "fit_apriori", "assign", "encode", "standardise", "distances"]


class GroupingError(ValueError):
  """The data cannot be grouped as configured; the message names the column or value."""


@dataclasses.dataclass
class Grouping:
  """Everything needed to re-create the assignment without this code (see store.py)."""
  mode: str
  features: List[str]                      # source columns used (kmeans) / [column] (apriori)
  num_groups: int
  # kmeans: the encoded space is `columns` (numeric features, then one-hot blocks, in order)
  columns: List[str] = dataclasses.field(default_factory=list)
  onehot: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  mean: Optional[np.ndarray] = None        # per column, fitted on train
  scale: Optional[np.ndarray] = None
  impute: Optional[np.ndarray] = None      # per column, raw units: train mean (one-hot: 0)
  centroids: Optional[np.ndarray] = None   # [k, len(columns)] in standardised space
  inertia: Optional[float] = None          # on the fit sample, standardised space
  silhouette: Optional[float] = None       # on the silhouette sample; None for one group
  selection: List[KCandidate] = dataclasses.field(default_factory=list)
  excluded: List[str] = dataclasses.field(default_factory=list)  # categorical, left out
  # apriori
  vocabulary: List[str] = dataclasses.field(default_factory=list)
  fallback_group: Optional[int] = None
  category_counts: Dict[str, int] = dataclasses.field(default_factory=dict)  # vocabulary's
  # bookkeeping
  fit_rows: int = 0
  seed: int = 0
  notes: List[str] = dataclasses.field(default_factory=list)  # documented degenerate cases

  def __post_init__(self):
    if self.mode == KMEANS and not self.columns:
      self.columns = list(self.features)

  @property
  def k(self) -> int:
    return self.num_groups

  @property
  def numeric_features(self) -> List[str]:
    return [f for f in self.features if f not in self.onehot] if self.mode == KMEANS else []

  @property
  def categorical_features(self) -> List[str]:
    return list(self.onehot) if self.mode == KMEANS else list(self.features)


def _is_number(v) -> bool:
  try:
    float(v)
    return True
  except (TypeError, ValueError):
    return False


def numeric_column(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
  """float64 [n] of a numeric grouping column; a non-numeric one is an error that names it."""
  if name not in columns:
    raise GroupingError(f"grouping feature '{name}' is not in the data "
                        f"(columns: {sorted(columns)})")
  col = np.asarray(columns[name]).reshape(-1)
  if col.dtype.kind in "OSU":
    bad = next((v for v in col if not _is_number(v) and v is not None), None)
    if bad is not None:
      raise GroupingError(
          f"grouping feature '{name}' is not numeric (value {bad!r}); K-Means needs numbers: "
          "set grouping.categorical to 'onehot' or 'exclude', or group a priori on it "
          "(grouping.mode: apriori, grouping.column)")
    col = np.array([np.nan if v is None or v == "" else float(v) for v in col])
  if col.dtype.kind == "b":
    col = col.astype(np.float64)
  return col.astype(np.float64)


def categorical_column(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
  """object [n] of str ('' where missing). Integers become their decimal text, as in TF's
  as_string; floats are refused because '3.0' vs '3.000000' would split serving from training."""
  if name not in columns:
    raise GroupingError(f"grouping column '{name}' is not in the data (columns: {sorted(columns)})")
  col = np.asarray(columns[name]).reshape(-1)
  if col.dtype.kind == "f":
    raise GroupingError(f"grouping column '{name}' holds floating-point values (e.g. "
                        f"{col[0] if col.size else 'none'}): categories must be strings or "
                        "integers")
  if col.dtype.kind in "iu":
    return col.astype(str).astype(object)
  if col.dtype.kind == "S":
    return np.array([v.decode("utf-8") for v in col], dtype=object)
  out = np.empty(col.shape[0], dtype=object)
  for i, v in enumerate(col):
    if v is None or (isinstance(v, float) and np.isnan(v)):
      out[i] = ""
    elif isinstance(v, bytes):
      out[i] = v.decode("utf-8")
    elif isinstance(v, (float, np.floating)):
      raise GroupingError(f"grouping column '{name}' holds floating-point values (e.g. {v}): "
                          "categories must be strings or integers")
    else:
      out[i] = str(v)
  return out


def as_float_matrix(columns: Mapping[str, np.ndarray], features: Sequence[str]) -> np.ndarray:
  """Stacks numeric columns into [n, d] float64; a non-numeric column is an error naming it."""
  mats = [numeric_column(columns, name) for name in features]
  return np.stack(mats, axis=1) if mats else np.zeros((0, 0))


def encode(g: Grouping, columns: Mapping[str, np.ndarray]) -> np.ndarray:
  """[n, len(g.columns)] raw encoded matrix: numeric values (NaN where missing), then 0/1."""
  blocks = []
  for f in g.numeric_features:
    blocks.append(numeric_column(columns, f)[:, None])
  for f, vocab in g.onehot.items():
    values = categorical_column(columns, f)
    index = {v: i for i, v in enumerate(vocab)}
    idx = np.array([index.get(v, -1) for v in values], dtype=np.int64)
    block = np.zeros((len(values), len(vocab)))
    hit = idx >= 0
    block[np.nonzero(hit)[0], idx[hit]] = 1.0
    blocks.append(block)
  return np.concatenate(blocks, axis=1)


def standardise(x: np.ndarray, impute, mean, scale) -> np.ndarray:
  x = np.where(np.isnan(x), impute, x)
  return (x - mean) / scale


def distances(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  """[n, k] squared distances, summed column by column (the order tf_assign uses)."""
  d = np.square(z[:, 0:1] - centroids[None, :, 0])
  for j in range(1, z.shape[1]):
    d = d + np.square(z[:, j:j + 1] - centroids[None, :, j])
  return d


def assign(g: Grouping, columns: Mapping[str, np.ndarray]) -> np.ndarray:
  """Group id (int64) for each row."""
  if g.mode == KMEANS:
    z = standardise(encode(g, columns), g.impute, g.mean, g.scale)
    if z.shape[0] == 0:
      return np.zeros(0, dtype=np.int64)
    return np.argmin(distances(z, g.centroids), axis=1).astype(np.int64)
  index: Dict[str, int] = {v: i for i, v in enumerate(g.vocabulary)}
  values = categorical_column(columns, g.features[0])
  return np.fromiter((index.get(v, g.fallback_group) for v in values), dtype=np.int64,
                     count=len(values))


def onehot_vocabulary(counts: Mapping[str, int], min_count: int) -> List[str]:
  """Categories with at least `min_count` train rows, most frequent first, then by value."""
  items = [(v, int(n)) for v, n in counts.items() if v != "" and n >= min_count]
  return [v for v, _ in sorted(items, key=lambda t: (-t[1], t[0]))]


def fit_kmeans(x: Union[np.ndarray, Mapping[str, np.ndarray]], features: Sequence[str],
               k_values: Sequence[int], *, seed: int = 0, min_group_share: float = 0.0,
               silhouette_sample: int = 5000, onehot: Optional[Mapping[str, List[str]]] = None,
               n_init: int = 4, tie_tolerance: float = kselect.DEFAULT_TIE_TOLERANCE,
               excluded: Sequence[str] = ()) -> Grouping:
  """Standardised K-Means on the rows given (the train sample).

  `x` is an [n, d] array of the numeric `features`, or a mapping column -> values that may
  also hold the categorical features named in `onehot` (feature -> vocabulary). With several
  k, picks by silhouette among sizes that respect `min_group_share` (kselect.choose_k).
  Same rows + same arguments -> identical centroids.
  """
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top

  features = list(features)
  onehot = {f: list(v) for f, v in (onehot or {}).items()}
  if isinstance(x, np.ndarray):
    if onehot:
      raise GroupingError("one-hot features need the columns as a mapping, not an array")
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.shape[1] != len(features):
      raise GroupingError(f"{x.shape[1]} columns given for features {features}")
    columns = {f: x[:, i] for i, f in enumerate(features)}
  else:
    columns = x
  numeric = [f for f in features if f not in onehot]
  expanded = numeric + [f"{f}{ONEHOT_SEPARATOR}{v}" for f, vocab in onehot.items() for v in vocab]
  if not expanded:
    raise GroupingError(f"no usable grouping feature among {features} (one-hot vocabularies "
                        "are empty: lower grouping.min_count?)")
  g = Grouping(mode=KMEANS, features=numeric + list(onehot), num_groups=0, columns=expanded,
               onehot=onehot, seed=int(seed), excluded=list(excluded))
  raw = encode(g, columns)
  n = raw.shape[0]
  if n == 0:
    raise GroupingError("the train split is empty: nothing to fit groups on")
  g.impute, g.mean, g.scale = _fit_scaler(raw, g)
  z = standardise(raw, g.impute, g.mean, g.scale)
  k_values = sorted(set(int(k) for k in k_values))
  if not k_values or k_values[0] < 1:
    raise GroupingError(f"grouping.k must be >= 1 (got {k_values})")
  distinct = _distinct_rows(z, k_values[-1])
  usable = [k for k in k_values if k <= distinct]
  if not usable:
    raise GroupingError(
        f"grouping.k={k_values[0] if len(k_values) == 1 else k_values} but the train data has "
        f"only {distinct} distinct point(s) in {features}: lower k or add grouping features")
  if len(usable) < len(k_values):
    g.notes.append(f"k values {[k for k in k_values if k > distinct]} skipped: only {distinct} "
                   "distinct points in the train sample")

  rng = np.random.default_rng(seed)
  sil_idx = np.sort(rng.choice(n, size=min(int(silhouette_sample), n), replace=False))
  fits, curve = {}, []
  for k in usable:
    with threadpoolctl.threadpool_limits(limits=_kmeans_threads(n), user_api="openmp"):
      km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)
    fits[k] = km
    curve.append(kselect.evaluate(k, z, km.labels_, float(km.inertia_), sil_idx,
                                  min_group_share))
    log.info("grouping: k=%d inertia=%.1f silhouette=%s smallest group %.1f%%", k,
             km.inertia_, _fmt(curve[-1].silhouette), 100 * curve[-1].min_share)
  chosen, why = kselect.choose_k(curve, min_group_share, tie_tolerance)
  if why:
    g.notes.append(why)
  if chosen.k == 1:
    g.notes.append("a single group: every row gets group 0 and the per-group heads reduce to "
                   "one global head; silhouette is undefined")
  km = fits[chosen.k]
  g.num_groups = chosen.k
  g.centroids = km.cluster_centers_.astype(np.float64)
  g.inertia, g.silhouette = chosen.inertia, chosen.silhouette
  g.selection, g.fit_rows = curve, n
  return g


def _distinct_rows(z: np.ndarray, enough: int) -> int:
  """Number of distinct rows, or a lower bound >= `enough` (found on a prefix: cheap)."""
  head = len(np.unique(z[:1000], axis=0))
  return head if head >= enough or len(z) <= 1000 else len(np.unique(z, axis=0))


def _kmeans_threads(n_rows: int) -> Optional[int]:
  """One OpenMP thread for small fits: below ~50k rows thread start-up and barriers cost more
  than they save, and on a busy machine spinning threads make a 0.1 s fit take seconds."""
  return 1 if n_rows < 50_000 else None


def _fmt(v: Optional[float]) -> str:
  return "n/a" if v is None else f"{v:.4f}"


def _fit_scaler(raw: np.ndarray, g: Grouping):
  """Train mean for imputation, mean/std for scaling (numeric columns); 0/1 for one-hot."""
  d = raw.shape[1]
  impute, mean, scale = np.zeros(d), np.zeros(d), np.ones(d)
  for j, f in enumerate(g.numeric_features):
    col = raw[:, j]
    ok = ~np.isnan(col)
    if not ok.any():
      raise GroupingError(f"grouping feature '{f}' has no value in the train data (all "
                          f"{len(col)} rows missing): nothing to impute it with")
    impute[j] = col[ok].mean()
    filled = np.where(ok, col, impute[j])
    mean[j] = filled.mean()
    std = filled.std()
    scale[j] = std if std > 0 else 1.0
  return impute, mean, scale


def fit_apriori(values: Union[np.ndarray, Sequence, Mapping[str, int]], column: str, *,
                min_count: int = 1, missing: int = 0) -> Grouping:
  """A-priori groups from the train values of `column` (or their exact counts).

  One group per category with at least `min_count` train rows (most frequent first, ties by
  value); the fallback group (last id) takes rare categories, categories unseen in train and
  missing values.
  """
  if isinstance(values, Mapping):
    counts = {str(k): int(v) for k, v in values.items()}
  else:
    arr = categorical_column({column: np.asarray(values)}, column)
    counts = dict(collections.Counter(arr.tolist()))
  missing = int(missing) + counts.pop("", 0)
  rows = sum(counts.values()) + missing
  if rows == 0:
    raise GroupingError("the train split is empty: nothing to fit groups on")
  vocab = onehot_vocabulary(counts, min_count)
  if not vocab:
    top = sorted(counts.items(), key=lambda t: -t[1])[:3]
    raise GroupingError(f"grouping.column '{column}': no category reaches "
                        f"grouping.min_count={min_count} in train (most frequent: {top}; "
                        f"{missing} missing)")
  rare = {v: n for v, n in counts.items() if v not in set(vocab)}
  notes = []
  if rare:
    one = len(rare) == 1
    notes.append(f"{len(rare)} rare categor{'y' if one else 'ies'} ({sum(rare.values())} train "
                 f"rows, fewer than {min_count} each) go{'es' if one else ''} to the fallback "
                 f"group {len(vocab)}")
  if missing:
    notes.append(f"{missing} train rows with no '{column}' value go to the fallback group")
  if len(vocab) == 1:
    notes.append(f"only one category ('{vocab[0]}') reaches min_count: groups are that "
                 "category and the fallback")
  return Grouping(mode=APRIORI, features=[column], num_groups=len(vocab) + 1,
                  vocabulary=vocab, fallback_group=len(vocab),
                  category_counts={v: counts[v] for v in vocab},
                  fit_rows=rows, notes=notes)
