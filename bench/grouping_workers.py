"""One benchmark contender per process: `python -m bench.grouping_workers <contender> <args.json>`.

Each times only its work (imports and loading its input are excluded) and writes a JSON result;
the parent (bench.grouping) measures the process's peak memory from outside.
  sklearn    KMeans(k, n_init, random_state).fit on the prepared train rows (sklearn.npy)
  core       the component's algorithm in process: bottom-n sample of the train rows
             (scan.TrainScan), fit on it (fitting.fit_kmeans), assign every row of every split
             (fitting.assign) - no files, no Beam
  executor   the real grouping executor (Executor.Do via standalone.build) over the tf.Example
             shards of the three splits: Beam scan of train, fit, Beam counting pass over every
             split (read-only), report
  statsgen   TFX's own StatisticsGen executor (Executor.Do) over the same shards and splits:
             the yardstick for a Beam pass over the same gzipped tf.Examples
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

import numpy as np

CHUNK = 65_536


def _inertia(g, raw: np.ndarray) -> float:
  """Within-group sum of squares of all rows in the component's standardised space."""
  from components.grouping import fitting  # pylint: disable=g-import-not-at-top
  total = 0.0
  for s in range(0, len(raw), CHUNK):
    cols = {f: raw[s:s + CHUNK, j] for j, f in enumerate(g.features)}
    z = fitting.standardise(fitting.encode(g, cols), g.impute, g.mean, g.scale)
    total += float(fitting.distances(z, g.centroids).min(axis=1).sum())
  return total


def sklearn(a):
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top
  x = np.load(os.path.join(a["dir"], "sklearn.npy"))
  train = x[:a["train_rows"]]
  t0 = time.perf_counter()
  km = KMeans(n_clusters=a["k"], n_init=a["n_init"], random_state=a["seed"]).fit(train)
  seconds = time.perf_counter() - t0
  return {"seconds": seconds, "inertia": -float(km.score(x)), "fit_rows": len(train),
          "groups": int(len(np.unique(km.labels_)))}


def _preload_sklearn() -> None:
  """fitting imports scikit-learn lazily; load it before the clock starts, as sklearn() does."""
  import sklearn.cluster  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import sklearn.metrics  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import


def core(a):
  from components.grouping import fitting, scan  # pylint: disable=g-import-not-at-top
  _preload_sklearn()
  raw = np.load(os.path.join(a["dir"], "raw.npy"))
  train = raw[:a["train_rows"]]
  features = a["features"]
  kinds = {f: "float" for f in features}
  t0 = time.perf_counter()
  s = scan.TrainScan(features, fitting.KMEANS, a["sample_size"])
  for start in range(0, len(train), CHUNK):
    part = train[start:start + CHUNK]
    s.add_batch(scan.row_hashes(scan.shard_key(a["seed"], "array"), start, len(part)),
                {f: part[:, j] for j, f in enumerate(features)}, kinds)
  r = s.result()
  g = fitting.fit_kmeans(r.sample, features, [a["k"]], seed=a["seed"], n_init=a["n_init"],
                         silhouette_sample=a["silhouette_sample"])
  counts = np.zeros(g.num_groups, np.int64)
  for start in range(0, len(raw), CHUNK):
    part = raw[start:start + CHUNK]
    ids = fitting.assign(g, {f: part[:, j] for j, f in enumerate(features)})
    counts += np.bincount(ids, minlength=g.num_groups)
  seconds = time.perf_counter() - t0
  return {"seconds": seconds, "inertia": _inertia(g, raw), "fit_rows": g.fit_rows,
          "groups": int((counts > 0).sum())}


def executor(a):
  from components.grouping import standalone, store  # pylint: disable=g-import-not-at-top
  _preload_sklearn()
  do, uri = standalone.build(
      os.path.join(a["dir"], "examples"), a["splits"], a["out"], a.get("beam_args") or [],
      mode="kmeans", features=a["features"], k_values=[a["k"]], seed=a["seed"],
      n_init=a["n_init"], sample_size=a["sample_size"],
      silhouette_sample=a["silhouette_sample"])
  t0 = time.perf_counter()
  do()
  seconds = time.perf_counter() - t0
  g = store.load(uri)
  summary = store.load_summary(uri)
  raw = np.load(os.path.join(a["dir"], "raw.npy"))
  return {"seconds": seconds, "inertia": _inertia(g, raw), "fit_rows": g.fit_rows,
          "groups": int(sum(1 for c in summary["counts"]["train"] if c)),
          "rows": summary["rows"]["train"], "rows_counted": sum(summary["rows"].values()),
          "grouping_uri": uri, "stages": summary["seconds"]}


def statsgen(a):
  from tfx.components.statistics_gen import executor as sg  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.grouping import standalone  # pylint: disable=g-import-not-at-top
  stats = standard_artifacts.ExampleStatistics()
  stats.uri = os.path.join(a["out"], "statistics")
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=a.get("beam_args") or [], tmp_dir=os.path.join(a["out"], "tmp"),
      unique_id="statsgen")
  ex = sg.Executor(context)
  inputs = {"examples": [standalone.examples_artifact(os.path.join(a["dir"], "examples"),
                                                      a["splits"])]}
  t0 = time.perf_counter()
  ex.Do(inputs, {"statistics": [stats]}, {"exclude_splits": "[]"})
  seconds = time.perf_counter() - t0
  return {"seconds": seconds, "rows": None}


def readers(a):
  """Microseconds per record of each library reader over the train shards, in process."""
  import glob  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  from tfx_bsl.coders import example_coder  # pylint: disable=g-import-not-at-top
  from components.grouping import example_io, fitting, scan  # pylint: disable=g-import-not-at-top
  paths = sorted(glob.glob(os.path.join(a["dir"], "examples", "Split-train", "*")))
  kinds = example_io.probe_kinds(paths, a["features"], "train")
  projected = schema_pb2.Schema()
  types = {"float": schema_pb2.FLOAT, "int": schema_pb2.INT, "bytes": schema_pb2.BYTES}
  for f in a["features"]:
    projected.feature.add(name=f, type=types[kinds[f]])
  all_columns = example_coder.ExamplesToRecordBatchDecoder()
  only_grouping = example_coder.ExamplesToRecordBatchDecoder(projected.SerializeToString())
  spec = example_io.parse_spec(kinds)
  usage = scan.usage_fn(fitting.KMEANS)

  def each_batch(fn):
    def run():
      for p in paths:
        for records in example_io.record_batches(p):
          fn(records)
    return run

  def component_reader():
    for p in paths:
      for _ in example_io.read_columns(p, kinds, usage, "train"):
        pass

  methods = {
      "tf.data framing": each_batch(lambda r: None),
      "+ tfx_bsl decode, all columns": each_batch(all_columns.DecodeBatch),
      "+ tfx_bsl decode, projected schema": each_batch(only_grouping.DecodeBatch),
      "+ tf.io.parse_example, grouping columns": each_batch(
          lambda r: example_io.tf.io.parse_example(r, spec)),
      "component reader": component_reader,
  }
  each_batch(lambda r: None)()   # warm the file cache and tf.data
  out = {}
  for name, fn in methods.items():
    t0 = time.perf_counter()
    fn()
    out[name] = 1e6 * (time.perf_counter() - t0) / a["train_rows"]
  return {"seconds": sum(out.values()), "us_per_record": out}


CONTENDERS = {"sklearn": sklearn, "core": core, "executor": executor, "statsgen": statsgen,
              "readers": readers}


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
  name, args_path = sys.argv[1], sys.argv[2]
  with open(args_path) as f:
    a = json.load(f)
  result = CONTENDERS[name](a)
  with open(a["result"], "w") as f:
    json.dump(result, f)


if __name__ == "__main__":
  main()
