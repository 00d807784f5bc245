"""One bounded pass over train: row and missing counts, category counts, a uniform sample.

The sample is a bottom-n sample: every row gets a 64-bit hash of (seed, shard file name,
position in the shard) and the `sample_size` rows with the smallest hashes are kept. That is a
uniform sample without replacement, independent of how the runner splits or orders the work,
so the same input artifact and seed always give the same sample (and, sorted by hash, the same
row order, hence the same K-Means fit). Memory is O(sample_size x features) however many rows
there are; partial scans merge (TrainScan.merge), which is what the Beam combiner does.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from components.grouping import kinds as kinds_lib
from components.grouping.fitting import APRIORI, GroupingError

MAX_DISTINCT = 100_000   # distinct values counted per categorical column (memory bound)
_U = np.uint64


def shard_key(seed: int, shard_name: str) -> int:
  """Stable 64-bit key of a shard (by file name, not path, so copies of an artifact agree)."""
  digest = hashlib.blake2b(f"{int(seed)}:{shard_name}".encode(), digest_size=8).digest()
  return int.from_bytes(digest, "little")


def row_hashes(key: int, start: int, n: int) -> np.ndarray:
  """splitmix64 of key + position, for positions start .. start + n - 1 (uint64)."""
  with np.errstate(over="ignore"):
    x = np.arange(start, start + n, dtype=_U) + _U(key) + _U(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U(27))) * _U(0x94D049BB133111EB)
    return x ^ (x >> _U(31))


def usage_of(kind: Optional[str], mode: str) -> str:
  """How a feature of this tf.Example kind is read: numbers, or categories (text)."""
  if mode == APRIORI or kind == kinds_lib.BYTES:
    return kinds_lib.CATEGORICAL
  return kinds_lib.NUMERIC


@dataclasses.dataclass
class ScanResult:
  rows: int
  kinds: Dict[str, Optional[str]]
  missing: Dict[str, int]
  categories: Dict[str, Optional[Dict[str, int]]]   # None: more than MAX_DISTINCT values
  sample: Dict[str, np.ndarray]                     # rows sorted by hash
  hashes: np.ndarray

  @property
  def sample_rows(self) -> int:
    return len(self.hashes)


class TrainScan:
  """Mergeable accumulator of the train pass (see the module docstring)."""

  def __init__(self, features: Sequence[str], mode: str, sample_size: int):
    self.features, self.mode, self.n = list(features), mode, int(sample_size)
    self.rows = 0
    self.kinds: Dict[str, Optional[str]] = {f: None for f in self.features}
    self.missing = {f: 0 for f in self.features}
    self.categories: Dict[str, Optional[collections.Counter]] = {}
    self._hashes: List[np.ndarray] = []
    self._cols: Dict[str, List[np.ndarray]] = {f: [] for f in self.features}
    self._buffered = 0
    self._threshold: Optional[np.uint64] = None   # n-th smallest hash kept so far

  # -- adding and merging ---------------------------------------------------------------------
  def add_batch(self, hashes: np.ndarray, columns: Dict[str, np.ndarray],
                kinds: Dict[str, Optional[str]]) -> None:
    """One batch: columns as example_io.column_of returns them for usage_of(kind)."""
    n = len(hashes)
    self.rows += n
    for f in self.features:
      self._merge_kind(f, kinds.get(f))
      col = columns[f]
      if col.dtype == object:
        missing = col == ""
        self._count_categories(f, col[~missing])
      else:
        missing = np.isnan(col)
      self.missing[f] += int(missing.sum())
    keep = np.arange(n) if self._threshold is None else np.nonzero(hashes < self._threshold)[0]
    if len(keep):
      self._hashes.append(hashes[keep])
      for f in self.features:
        self._cols[f].append(columns[f][keep])
      self._buffered += len(keep)
      if self._buffered > 2 * self.n:
        self._compact()

  def merge(self, other: "TrainScan") -> "TrainScan":
    self.rows += other.rows
    for f in self.features:
      self._merge_kind(f, other.kinds[f])
      self.missing[f] += other.missing[f]
      theirs = other.categories.get(f, collections.Counter())
      if f in other.categories and theirs is None:
        self.categories[f] = None
      elif theirs:
        self._count_categories(f, None, theirs)
    self._hashes.extend(other._hashes)   # pylint: disable=protected-access
    for f in self.features:
      self._cols[f].extend(other._cols[f])   # pylint: disable=protected-access
    self._buffered += other._buffered   # pylint: disable=protected-access
    if self._buffered > 2 * self.n:
      self._compact()
    return self

  def _merge_kind(self, f: str, kind: Optional[str]) -> None:
    mine = self.kinds[f]
    if kind is None or kind == mine:
      return
    if mine is None:
      self.kinds[f] = kind
      return
    numeric = {kinds_lib.FLOAT, kinds_lib.INT}
    if {mine, kind} <= numeric and self.mode != APRIORI:
      self.kinds[f] = kinds_lib.FLOAT
      return
    raise GroupingError(f"grouping feature '{f}' has {mine} values in some train examples and "
                        f"{kind} values in others")

  def _count_categories(self, f: str, values, counts=None) -> None:
    if f in self.categories and self.categories[f] is None:
      return
    c = self.categories.setdefault(f, collections.Counter())
    c.update(counts if counts is not None else values.tolist())
    if len(c) > MAX_DISTINCT:
      self.categories[f] = None

  # -- the sample -------------------------------------------------------------------------------
  def _columns_concat(self, f: str) -> np.ndarray:
    parts = self._cols[f]
    if any(p.dtype == object for p in parts):   # a categorical column that was absent somewhere
      parts = [p if p.dtype == object else np.full(len(p), "", dtype=object) for p in parts]
    return np.concatenate(parts) if parts else np.zeros(0)

  def _compact(self) -> None:
    hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, _U)
    cols = {f: self._columns_concat(f) for f in self.features}
    if len(hashes) > self.n:
      idx = np.argpartition(hashes, self.n - 1)[:self.n]
      hashes = hashes[idx]
      cols = {f: c[idx] for f, c in cols.items()}
      self._threshold = hashes.max()
    self._hashes = [hashes]
    self._cols = {f: [c] for f, c in cols.items()}
    self._buffered = len(hashes)

  def result(self) -> ScanResult:
    self._compact()
    hashes = self._hashes[0]
    order = np.argsort(hashes, kind="stable")
    sample = {}
    for f in self.features:
      col = self._cols[f][0][order]
      if usage_of(self.kinds[f], self.mode) == kinds_lib.CATEGORICAL and col.dtype != object:
        col = np.full(len(col), "", dtype=object)   # absent everywhere so far: all missing
      sample[f] = col
    categories = {f: (None if c is None else dict(c)) for f, c in self.categories.items()}
    return ScanResult(rows=self.rows, kinds=dict(self.kinds), missing=dict(self.missing),
                      categories=categories, sample=sample, hashes=hashes[order])


def scan_batches(scan: TrainScan, batches: Iterable, key: int) -> TrainScan:
  """Feeds one shard's batches (example_io.ColumnBatch, in shard order) into `scan`."""
  start = 0
  for b in batches:
    n = len(b)
    scan.add_batch(row_hashes(key, start, n), b.columns, b.kinds)
    start += n
  return scan


def usage_fn(mode: str):
  """example_io.UsageFn for the scan: numbers or text depending on the kind found."""
  return lambda feature, kind: usage_of(kind, mode)
