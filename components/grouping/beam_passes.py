"""The two distributed passes of the grouping component, as Beam transforms.

Work is distributed by shard file: each worker streams its shard batch by batch (bounded memory,
vectorised parsing), so the data set never sits in one process.
  scan     - train shards -> TrainScan per shard -> one merged ScanResult (bounded sample);
             the numeric grouping columns of each shard go to a column cache on disk.
  annotate - every split's shards -> the same shard with the group id added, written in place
             through a temporary file; per-split row, group and missing counts. Train shards
             take their numeric columns from the cache instead of parsing them again.
beam.Create already redistributes its elements (a reshuffle), so no other shuffle is added.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from components.grouping import column_cache, example_io, fitting, scan, store

log = logging.getLogger(__name__)
_PROGRESS_ROWS = 250_000


def write_pickle(obj, path: str) -> None:
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def read_pickle(path: str):
  with tf.io.gfile.GFile(path, "rb") as f:
    return pickle.load(f)


class _Progress:
  """Logs rows done every _PROGRESS_ROWS and at the end of a shard."""

  def __init__(self, what: str, path: str):
    self._what, self._name, self._t0 = what, path, time.time()
    self.rows, self._next = 0, _PROGRESS_ROWS

  def add(self, n: int) -> None:
    self.rows += n
    if self.rows >= self._next:
      self._next += _PROGRESS_ROWS
      log.info("grouping: %s %s: %d rows (%.1fs)", self._what, self._name, self.rows,
               time.time() - self._t0)

  def done(self) -> None:
    log.info("grouping: %s %s done: %d rows in %.1fs", self._what, self._name, self.rows,
             time.time() - self._t0)


class _ScanShard(beam.DoFn):
  """A train shard -> its TrainScan (counts, kinds, bottom-n sample); its numeric columns go to
  the column cache when there is one."""

  def __init__(self, features, mode: str, sample_size: int, seed: int,
               cache_dir: Optional[str] = None):
    self._args = (list(features), mode, int(sample_size))
    self._seed = int(seed)
    self._cache_dir = cache_dir
    self._rows = beam.metrics.Metrics.counter("grouping", "train_rows_scanned")

  def process(self, path: str):
    progress = _Progress("scanned", path)
    features, mode, _ = self._args
    cache = (column_cache.Writer(self._cache_dir, path, features)
             if self._cache_dir and mode != fitting.APRIORI else None)

    def counted(batches):
      for b in batches:
        if cache is not None:
          cache.add(b.columns)
        yield b
        progress.add(len(b))
        self._rows.inc(len(b))

    batches = example_io.read_parsed(path, features, scan.usage_fn(mode),
                                     f"split 'train', file {path}")
    try:
      s = scan.scan_batches(scan.TrainScan(*self._args), counted(batches),
                            scan.shard_key(self._seed, os.path.basename(path)))
    except BaseException:
      if cache is not None:
        cache.abort()
      raise
    if cache is not None:
      cache.close()
    progress.done()
    yield s


class _MergeScans(beam.CombineFn):

  def __init__(self, features, mode: str, sample_size: int):
    self._args = (list(features), mode, int(sample_size))

  def create_accumulator(self):
    return scan.TrainScan(*self._args)

  def add_input(self, acc, s):
    return acc.merge(s)

  def merge_accumulators(self, accs):
    accs = iter(accs)
    first = next(accs)
    for a in accs:
      first.merge(a)
    return first

  def extract_output(self, acc):
    return acc.result()


def run_scan(pipeline, train_files: List[str], cfg: Dict, out_path: str,
             cache_dir: Optional[str] = None) -> None:
  """Adds the scan to `pipeline`; the merged ScanResult is pickled to out_path. With a
  cache_dir, each shard's numeric grouping columns are saved there (column_cache)."""
  features, mode = cfg["features"], cfg["mode"]
  _ = (pipeline
       | "TrainShards" >> beam.Create(train_files)
       | "ScanShard" >> beam.ParDo(_ScanShard(features, mode, cfg["sample_size"], cfg["seed"],
                                              cache_dir))
       | "MergeScans" >> beam.CombineGlobally(
           _MergeScans(features, mode, cfg["sample_size"])).without_defaults()
       | "SaveScan" >> beam.Map(write_pickle, out_path))


class _AnnotateShard(beam.DoFn):
  """(split, input shard, output shard, column cache dir or None) -> output shard written;
  yields (split, counts)."""

  def __init__(self, grouping_json: Dict, feature_name: str, tmp_dir: str):
    self._json, self._feature_name, self._tmp_dir = grouping_json, feature_name, tmp_dir
    self._rows = beam.metrics.Metrics.counter("grouping", "rows_annotated")
    self._g = None

  def setup(self):
    self._g = store.from_json_dict(self._json)
    self._suffixes = example_io.annotation_suffixes(self._g.num_groups, self._feature_name)
    numeric = set(self._g.numeric_features)
    self._usage = lambda f, kind: (example_io.NUMERIC if f in numeric
                                   else example_io.CATEGORICAL)

  def process(self, element: Tuple[str, str, str, Optional[str]]):
    split, in_path, out_path, cache_dir = element
    g = self._g
    where = f"split '{split}', file {in_path}"
    counts = np.zeros(g.num_groups, dtype=np.int64)
    missing = {f: 0 for f in g.features}
    cached = column_cache.open_cached(cache_dir, in_path, g.numeric_features, where)
    parsed = [f for f in g.features if cached is None or f not in cached.features]
    progress = _Progress(f"annotated {split}", in_path)
    writer = example_io.ShardWriter(out_path, self._tmp_dir)
    try:
      for b in example_io.read_parsed(in_path, parsed, self._usage, where):
        if cached is not None:
          b.columns.update(cached.take(len(b)))
        ids = fitting.assign(g, b.columns)
        writer.write_framed(example_io.annotated_framed(b.records, ids, self._suffixes,
                                                        self._feature_name))
        counts += np.bincount(ids, minlength=g.num_groups)
        for f, col in b.columns.items():
          missing[f] += int((col == "").sum() if col.dtype == object else np.isnan(col).sum())
        progress.add(len(b))
        self._rows.inc(len(b))
      if cached is not None:
        cached.close()
    except BaseException:
      writer.abort()
      raise
    writer.close()
    progress.done()
    yield split, {"rows": progress.rows, "counts": counts.tolist(), "missing": missing}


class _SumStats(beam.CombineFn):
  """(split, stats) pairs -> {split: summed stats}, in one combine (one shuffle)."""

  def create_accumulator(self):
    return {}

  def add_input(self, acc, element):
    split, stats = element
    return self.merge_accumulators([acc, {split: stats}])

  def merge_accumulators(self, accs):
    out: Dict[str, Dict] = {}
    for acc in accs:
      for split, a in acc.items():
        if split not in out:
          out[split] = {"rows": a["rows"], "counts": list(a["counts"]),
                        "missing": dict(a["missing"])}
          continue
        o = out[split]
        o["rows"] += a["rows"]
        o["counts"] = [x + y for x, y in zip(o["counts"], a["counts"])]
        for f, m in a["missing"].items():
          o["missing"][f] = o["missing"].get(f, 0) + m
    return out

  def extract_output(self, acc):
    return acc


def run_annotate(pipeline, shards: List[Tuple[str, str, str, Optional[str]]],
                 grouping_json: Dict, feature_name: str, tmp_dir: str, out_path: str) -> None:
  """Adds the annotation to `pipeline`; {split: stats} is pickled to out_path. `shards` holds
  (split, input shard, output shard, column cache dir or None)."""
  _ = (pipeline
       | "Shards" >> beam.Create(shards)
       | "AnnotateShard" >> beam.ParDo(_AnnotateShard(grouping_json, feature_name, tmp_dir))
       | "SumPerSplit" >> beam.CombineGlobally(_SumStats()).without_defaults()
       | "SaveStats" >> beam.Map(write_pickle, out_path))
