"""The two read-only passes of the grouping component, as Beam transforms.

Work is distributed by shard file: each worker streams its shard batch by batch through tf.data
and tf.io.parse_example of the grouping columns only (example_io), so the data set never sits in one
process and only the grouping columns are decoded.
  scan   - train shards -> TrainScan per shard -> one merged ScanResult (bounded sample).
  counts - every split's shards -> per-split row, group and missing counts (nothing written).
Reading by shard (not with one BeamSource over all files) keeps each row's position in its shard,
which the scan's sample hashes need for a sample that does not depend on the runner.
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

from components.grouping import example_io, fitting, scan, store

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
  """A train shard -> its TrainScan (counts, kinds, bottom-n sample)."""

  def __init__(self, kinds: Dict[str, Optional[str]], mode: str, sample_size: int, seed: int):
    self._kinds, self._mode = dict(kinds), mode
    self._args = (list(kinds), mode, int(sample_size))
    self._seed = int(seed)
    self._rows = beam.metrics.Metrics.counter("grouping", "train_rows_scanned")

  def process(self, path: str):
    progress = _Progress("scanned", path)

    def counted(batches):
      for b in batches:
        yield b
        progress.add(len(b))
        self._rows.inc(len(b))

    batches = example_io.read_columns(path, self._kinds, scan.usage_fn(self._mode),
                                      f"split 'train', file {path}")
    s = scan.scan_batches(scan.TrainScan(*self._args), counted(batches),
                          scan.shard_key(self._seed, os.path.basename(path)))
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


def run_scan(pipeline, train_files: List[str], cfg: Dict, kinds: Dict[str, Optional[str]],
             out_path: str) -> None:
  """Adds the scan to `pipeline`; the merged ScanResult is pickled to out_path. `kinds` are the
  grouping columns' tf.Example kinds (example_io.probe_kinds)."""
  features, mode = cfg["features"], cfg["mode"]
  _ = (pipeline
       | "TrainShards" >> beam.Create(train_files)
       | "ScanShard" >> beam.ParDo(_ScanShard(kinds, mode, cfg["sample_size"], cfg["seed"]))
       | "MergeScans" >> beam.CombineGlobally(
           _MergeScans(features, mode, cfg["sample_size"])).without_defaults()
       | "SaveScan" >> beam.Map(write_pickle, out_path))


class _CountShard(beam.DoFn):
  """(split, shard) -> (split, {rows, counts per group, missing per feature}); reads only."""

  def __init__(self, grouping_json: Dict, kinds: Dict[str, Optional[str]]):
    self._json, self._kinds = grouping_json, dict(kinds)
    self._rows = beam.metrics.Metrics.counter("grouping", "rows_counted")
    self._g = None

  def setup(self):
    self._g = store.from_json_dict(self._json)
    numeric = set(self._g.numeric_features)
    self._usage = lambda f, kind: (example_io.NUMERIC if f in numeric
                                   else example_io.CATEGORICAL)

  def process(self, element: Tuple[str, str]):
    split, path = element
    g = self._g
    counts = np.zeros(g.num_groups, dtype=np.int64)
    missing = {f: 0 for f in g.features}
    progress = _Progress(f"counted {split}", path)
    kinds = {f: self._kinds.get(f) for f in g.features}
    for b in example_io.read_columns(path, kinds, self._usage, f"split '{split}', file {path}"):
      ids = fitting.assign(g, b.columns)
      counts += np.bincount(ids, minlength=g.num_groups)
      for f, col in b.columns.items():
        missing[f] += int((col == "").sum() if col.dtype == object else np.isnan(col).sum())
      progress.add(len(b))
      self._rows.inc(len(b))
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


def run_counts(pipeline, shards: List[Tuple[str, str]], grouping_json: Dict,
               kinds: Dict[str, Optional[str]], out_path: str) -> None:
  """Adds the counting pass to `pipeline`; {split: stats} is pickled to out_path. `shards`
  holds (split, shard path) pairs."""
  _ = (pipeline
       | "Shards" >> beam.Create(shards)
       | "CountShard" >> beam.ParDo(_CountShard(grouping_json, kinds))
       | "SumPerSplit" >> beam.CombineGlobally(_SumStats()).without_defaults()
       | "SaveStats" >> beam.Map(write_pickle, out_path))
