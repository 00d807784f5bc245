"""Grouping executor: sample -> fit (in process, bounded) -> assign every row (distributed Beam).

Memory stays flat as data grows: only `sample_size` rows of the grouping columns ever sit in
one process; assignment and annotation stream through Beam.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components import anomaly_gate
from components.grouping import example_io, fitting, store

log = logging.getLogger(__name__)

EXAMPLES_KEY = "examples"
ANOMALIES_KEY = "anomalies"
GROUPING_KEY = "grouping"
ANNOTATED_KEY = "annotated_examples"
CONFIG_KEY = "grouping_config"
TRAIN_SPLIT = "train"
_BATCH = dict(min_batch_size=256, max_batch_size=4096)


def _read_json(directory: str, name: str):
  with tf.io.gfile.GFile(os.path.join(directory, name)) as f:
    return json.load(f)


def _split_pattern(examples, split: str) -> str:
  return os.path.join(artifact_utils.get_split_uri([examples], split), "*")


class _AssignDoFn(beam.DoFn):
  """Assigns a batch of serialized examples and emits (group_id, annotated record)."""

  def __init__(self, grouping_json: Dict[str, Any], feature_name: str):
    self._json = grouping_json
    self._feature_name = feature_name
    self._g = None

  def setup(self):
    self._g = store.from_json_dict(self._json)

  def process(self, batch: List[bytes]):
    numeric = self._g.mode == fitting.KMEANS
    ids = fitting.assign(self._g, example_io.extract_columns(batch, self._g.features, numeric))
    for record, gid in zip(batch, ids):
      yield int(gid), example_io.with_group_id(record, gid, self._feature_name)


class _CountGroups(beam.CombineFn):
  def __init__(self, k: int):
    self._k = k

  def create_accumulator(self):
    return np.zeros(self._k, dtype=np.int64)

  def add_input(self, acc, gid):
    acc[gid] += 1
    return acc

  def merge_accumulators(self, accs):
    return np.sum(list(accs), axis=0)

  def extract_output(self, acc):
    return [int(x) for x in acc]


class Executor(base_beam_executor.BaseBeamExecutor):
  """Fits the grouping on train only and annotates every split with the group id."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    anomaly_gate.raise_on_anomalies(input_dict.get(ANOMALIES_KEY, []))
    cfg = json.loads(exec_properties[CONFIG_KEY])
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    splits = artifact_utils.decode_split_names(examples.split_names)
    if TRAIN_SPLIT not in splits:
      raise fitting.GroupingError(f"examples have no '{TRAIN_SPLIT}' split (splits: {splits})")
    grouping_artifact = artifact_utils.get_single_instance(output_dict[GROUPING_KEY])
    annotated = artifact_utils.get_single_instance(output_dict[ANNOTATED_KEY])

    log.info("grouping: sampling up to %d train rows of %s", cfg["sample_size"], cfg["features"])
    sample, n_train = self._sample(examples, cfg)
    g = self._fit(sample, cfg)
    log.info("grouping: %s with %d groups fitted on %d of %d train rows",
             g.mode, g.num_groups, g.fit_rows, n_train)

    annotated.split_names = artifact_utils.encode_split_names(splits)
    counts = self._annotate(examples, splits, g, cfg["group_feature"], annotated)
    examples_utils.set_payload_format(annotated, examples_utils.get_payload_format(examples))
    summary = build_summary(g, counts, sample, cfg)
    store.save(g, grouping_artifact.uri, summary=summary)
    grouping_artifact.set_int_custom_property("num_groups", g.num_groups)
    grouping_artifact.set_string_custom_property("mode", g.mode)
    for split, c in counts.items():
      empty = [i for i, n in enumerate(c) if n == 0]
      log.info("grouping: split %s rows per group %s%s", split, c,
               f" (empty groups {empty})" if empty else "")

  def _sample(self, examples, cfg):
    numeric = cfg["mode"] == fitting.KMEANS
    features = cfg["features"]
    out_dir = os.path.join(self._get_tmp_dir(), "sample")
    with self._make_beam_pipeline() as p:
      rows = (p | "ReadTrain" >> beam.io.ReadFromTFRecord(_split_pattern(examples, TRAIN_SPLIT))
              | "Batch" >> beam.BatchElements(**_BATCH)
              | "Extract" >> beam.FlatMap(
                  lambda b: zip(*[example_io.extract_columns(b, features, numeric)[f]
                                  for f in features])))
      sample = rows | "Sample" >> beam.combiners.Sample.FixedSizeGlobally(cfg["sample_size"])
      count = rows | "Count" >> beam.combiners.Count.Globally()
      _ = ((sample | "SampleJson" >> beam.Map(lambda s: json.dumps([list(r) for r in s])))
           | "WriteSample" >> beam.io.WriteToText(os.path.join(out_dir, "sample"),
                                                  shard_name_template=""))
      _ = (count | "CountJson" >> beam.Map(json.dumps)
           | "WriteCount" >> beam.io.WriteToText(os.path.join(out_dir, "count"),
                                                 shard_name_template=""))
    rows, n = _read_json(out_dir, "sample"), _read_json(out_dir, "count")
    cols = {name: np.asarray([r[i] for r in rows], dtype=np.float64 if numeric else object)
            for i, name in enumerate(features)}
    return cols, n

  def _fit(self, sample, cfg) -> fitting.Grouping:
    if cfg["mode"] == fitting.KMEANS:
      x = fitting.as_float_matrix(sample, cfg["features"])
      return fitting.fit_kmeans(x, cfg["features"], cfg["k_values"], seed=cfg["seed"],
                                min_group_share=cfg["min_group_share"],
                                silhouette_sample=cfg["silhouette_sample"])
    column = cfg["features"][0]
    return fitting.fit_apriori(sample[column], column, min_count=cfg["min_count"])

  def _annotate(self, examples, splits, g, feature_name, annotated) -> Dict[str, List[int]]:
    out_dir = os.path.join(self._get_tmp_dir(), "counts")
    grouping_json = store.to_json_dict(g)
    with self._make_beam_pipeline() as p:
      for split in splits:
        pairs = (p | f"Read[{split}]" >> beam.io.ReadFromTFRecord(_split_pattern(examples, split))
                 | f"Batch[{split}]" >> beam.BatchElements(**_BATCH)
                 | f"Assign[{split}]" >> beam.ParDo(_AssignDoFn(grouping_json, feature_name)))
        _ = (pairs | f"Records[{split}]" >> beam.Values()
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(artifact_utils.get_split_uri([annotated], split), "data_tfrecord"),
                 file_name_suffix=".gz"))
        _ = (pairs | f"Ids[{split}]" >> beam.Keys()
             | f"Count[{split}]" >> beam.CombineGlobally(_CountGroups(g.num_groups))
             | f"CountJson[{split}]" >> beam.Map(json.dumps)
             | f"WriteCount[{split}]" >> beam.io.WriteToText(
                 os.path.join(out_dir, split), shard_name_template=""))
    counts = {}
    for split in splits:
      counts[split] = _read_json(out_dir, split)
    return counts


def build_summary(g: fitting.Grouping, counts, sample, cfg) -> Dict[str, Any]:
  numeric = g.mode == fitting.KMEANS
  missing = {f: int(np.isnan(sample[f]).sum()) if numeric else int((sample[f] == "").sum())
             for f in g.features}
  return {
      "mode": g.mode, "features": g.features, "num_groups": g.num_groups,
      "counts": counts, "rows": {s: int(sum(c)) for s, c in counts.items()},
      "fit_rows": g.fit_rows, "missing_in_fit_sample": missing,
      "inertia": g.inertia, "silhouette": g.silhouette,
      "selection": [vars(c) for c in g.selection], "group_feature": cfg["group_feature"],
  }
