"""Small tf.Example data sets for grouping tests: blobs with known k, written as ExampleGen would."""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf

CENTERS = np.array([[-93.68, 42.00], [-93.60, 42.06], [-93.62, 41.99], [-93.66, 42.05]])


def blobs(n: int, seed: int = 0, centers: np.ndarray = CENTERS, spread: float = 0.004):
  """lon/lat rows around `centers` (well separated), plus the true label of each row."""
  rng = np.random.default_rng(seed)
  truth = rng.integers(0, len(centers), n)
  xy = centers[truth] + rng.normal(scale=spread, size=(n, 2))
  return {"lon": xy[:, 0], "lat": xy[:, 1]}, truth


def to_example(row: Mapping[str, object]) -> bytes:
  """int -> int64_list, float -> float_list, str -> bytes_list; None or NaN -> absent."""
  ex = tf.train.Example()
  for name, v in row.items():
    if v is None or (isinstance(v, float) and np.isnan(v)):
      continue
    feat = ex.features.feature[name]
    if isinstance(v, (bool, np.bool_)):
      raise TypeError(name)
    if isinstance(v, (int, np.integer)):
      feat.int64_list.value.append(int(v))
    elif isinstance(v, (float, np.floating)):
      feat.float_list.value.append(float(v))
    else:
      feat.bytes_list.value.append(str(v).encode())
  return ex.SerializeToString()


def rows_of(columns: Mapping[str, Sequence]) -> List[Dict[str, object]]:
  names = list(columns)
  n = len(columns[names[0]]) if names else 0
  return [{k: (columns[k][i].item() if hasattr(columns[k][i], "item") else columns[k][i])
           for k in names} for i in range(n)]


def write_split(root: str, split: str, rows: Sequence[Mapping[str, object]],
                shards: int = 1) -> List[str]:
  """<root>/Split-<split>/data_tfrecord-0000i-of-0000n.gz, rows dealt round-robin."""
  d = os.path.join(root, f"Split-{split}")
  os.makedirs(d, exist_ok=True)
  paths = []
  for s in range(shards):
    path = os.path.join(d, f"data_tfrecord-{s:05d}-of-{shards:05d}.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as w:
      for row in rows[s::shards]:
        w.write(to_example(row))
    paths.append(path)
  return paths


def read_split(uri: str, split: str) -> List[tf.train.Example]:
  files = sorted(tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*")))
  ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
  return [tf.train.Example.FromString(r.numpy()) for r in ds]
