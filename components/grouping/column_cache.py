"""Numeric grouping columns of a train shard, kept on disk by the scan for the annotate pass.

The annotate pass rewrites every train example, so it reads the train shards again; with the
columns the scan already parsed (float64, NaN where missing) it needs no second
tf.io.parse_example of train. Per shard: `<name>.f64` holds the columns as raw float64 blocks
[rows, features] in file order, written a batch at a time (memory stays one batch), and
`<name>.json` - written last, so its presence means the data is complete - names the columns
and the row count. A feature that is not numeric throughout the shard is left out; the annotate
pass parses whatever is not cached. The files live in the executor's temporary directory
(shared with the Beam workers) and are deleted after the annotate pass.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from components.grouping.fitting import GroupingError


def _paths(cache_dir: str, shard_path: str):
  base = os.path.join(cache_dir, os.path.basename(shard_path))
  return base + ".f64", base + ".json"


class Writer:
  """Appends each batch's numeric columns of `features`; close() writes the manifest."""

  def __init__(self, cache_dir: str, shard_path: str, features: Sequence[str]):
    tf.io.gfile.makedirs(cache_dir)
    self._data_path, self._manifest = _paths(cache_dir, shard_path)
    if tf.io.gfile.exists(self._manifest):   # a retried scan: invalidate the old copy first
      tf.io.gfile.remove(self._manifest)
    self._features = list(features)
    self._numeric = {f: True for f in self._features}
    self._rows = 0
    self._file = tf.io.gfile.GFile(self._data_path, "wb")

  def add(self, columns: Dict[str, np.ndarray]) -> None:
    n = len(next(iter(columns.values()))) if columns else 0
    block = np.full((n, len(self._features)), np.nan)
    for j, f in enumerate(self._features):
      col = columns[f]
      if col.dtype == object:
        self._numeric[f] = False
      elif self._numeric[f]:
        block[:, j] = col
    self._file.write(block.tobytes())
    self._rows += n

  def close(self) -> None:
    self._file.close()
    with tf.io.gfile.GFile(self._manifest, "w") as f:
      json.dump({"features": self._features, "numeric": [f for f in self._features
                                                         if self._numeric[f]],
                 "rows": self._rows}, f)

  def abort(self) -> None:
    self._file.close()


class Reader:
  """The cached columns of one shard, handed out `n` rows at a time in file order."""

  def __init__(self, data_path: str, manifest: Dict, features: List[str], where: str):
    self.features = features
    self._all = manifest["features"]
    self._rows, self._done, self._where = int(manifest["rows"]), 0, where
    self._file = tf.io.gfile.GFile(data_path, "rb")

  def take(self, n: int) -> Dict[str, np.ndarray]:
    width = len(self._all)
    data = self._file.read(n * width * 8) if n else b""
    if len(data) != n * width * 8:
      raise GroupingError(f"the column cache of {self._where} holds {self._rows} rows but the "
                          "shard has more: was it changed during the run?")
    block = np.frombuffer(data, np.float64).reshape(n, width)
    self._done += n
    return {f: block[:, self._all.index(f)].copy() for f in self.features}

  def close(self) -> None:
    self._file.close()
    if self._done != self._rows:
      raise GroupingError(f"the column cache of {self._where} holds {self._rows} rows but the "
                          f"shard has {self._done}: was it changed during the run?")


def open_cached(cache_dir: Optional[str], shard_path: str, features: Sequence[str],
                where: str) -> Optional[Reader]:
  """A Reader of those `features` cached for the shard, or None when none is (no cache)."""
  if not cache_dir:
    return None
  data_path, manifest_path = _paths(cache_dir, shard_path)
  if not tf.io.gfile.exists(manifest_path):
    return None
  with tf.io.gfile.GFile(manifest_path) as f:
    manifest = json.load(f)
  cached = [f for f in features if f in set(manifest["numeric"])]
  return Reader(data_path, manifest, cached, where) if cached else None
