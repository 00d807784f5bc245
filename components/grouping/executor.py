"""Grouping executor: scan train (Beam) -> fit on the bounded sample -> count every split (Beam).

The component fits; it does not rewrite data. Memory stays flat as data grows: at most
`sample_size` rows of the grouping columns ever sit in one process; both passes stream shard by
shard through Beam workers and decode only the grouping columns (example_io).
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Dict, List, Tuple

import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components import anomaly_gate
from components.grouping import beam_passes, example_io, fit_train, fitting, report, store
from components.grouping import summary as summary_lib

log = logging.getLogger(__name__)

EXAMPLES_KEY = "examples"
ANOMALIES_KEY = "anomalies"
GROUPING_KEY = "grouping"
CONFIG_KEY = "grouping_config"
TRAIN_SPLIT = "train"


def split_files(examples, split: str) -> List[str]:
  return sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split),
                                              "*")))


class _Stopwatch:
  """Wall seconds per stage, recorded in summary.json and logged."""

  def __init__(self):
    self.laps: Dict[str, float] = {}
    self._t = time.perf_counter()

  def lap(self, name: str) -> None:
    now = time.perf_counter()
    self.laps[name] = round(now - self._t, 3)
    self._t = now
    log.info("grouping: %s took %.1fs", name, self.laps[name])


class Executor(base_beam_executor.BaseBeamExecutor):
  """Fits the grouping on train only; counts rows per group in every split (read-only)."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    anomaly_gate.raise_on_anomalies(input_dict.get(ANOMALIES_KEY, []))
    cfg = json.loads(exec_properties[CONFIG_KEY])
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    payload = examples_utils.get_payload_format(examples)
    if payload != example_gen_pb2.FORMAT_TF_EXAMPLE:
      raise fitting.GroupingError(
          f"examples at {examples.uri} have payload format "
          f"{example_gen_pb2.PayloadFormat.Name(payload)}; grouping reads tf.Examples")
    splits = artifact_utils.decode_split_names(examples.split_names)
    if TRAIN_SPLIT not in splits:
      raise fitting.GroupingError(f"examples have no '{TRAIN_SPLIT}' split (splits: {splits})")
    files = {s: split_files(examples, s) for s in splits}
    if not files[TRAIN_SPLIT]:
      raise fitting.GroupingError(f"the train split of {examples.uri} has no files: nothing to "
                                  "fit groups on")
    grouping_artifact = artifact_utils.get_single_instance(output_dict[GROUPING_KEY])
    tmp = self._get_tmp_dir()

    clock = _Stopwatch()
    kinds = example_io.probe_kinds(files[TRAIN_SPLIT], cfg["features"], "split 'train'")
    log.info("grouping: scanning %d train file(s) for %s (%s, kinds %s), sample of up to %d "
             "rows", len(files[TRAIN_SPLIT]), cfg["features"], cfg["mode"], kinds,
             cfg["sample_size"])
    scan_path = os.path.join(tmp, "scan.pkl")
    with self._make_beam_pipeline() as p:
      beam_passes.run_scan(p, files[TRAIN_SPLIT], cfg, kinds, scan_path)
    result = beam_passes.read_pickle(scan_path)
    clock.lap("scan")
    g = fit_train.fit(result, cfg)
    clock.lap("fit")
    log.info("grouping: %s with %d groups fitted on %d of %d train rows", g.mode,
             g.num_groups, g.fit_rows, result.rows)

    report.preload()   # the report's imports overlap the counting pass
    stats = self._count(splits, files, g, result.kinds, tmp)
    clock.lap("counts")

    summary = summary_lib.build(g, result, stats, cfg)
    html = report.write(grouping_artifact.uri, g, summary, result.sample)
    clock.lap("report")
    summary["seconds"] = clock.laps
    store.save(g, grouping_artifact.uri, summary=summary)
    grouping_artifact.set_int_custom_property("num_groups", g.num_groups)
    grouping_artifact.set_string_custom_property("mode", g.mode)
    for split in splits:
      log.info("grouping: split %s rows per group %s", split, summary["counts"][split])
    for w in summary["warnings"]:
      log.warning("grouping: %s", w)
    log.info("grouping: report written to %s", html)

  def _count(self, splits, files, g, kinds, tmp) -> Dict[str, Dict]:
    """{split: {rows, counts, missing}} by a read-only pass over every split's shards."""
    shards: List[Tuple[str, str]] = []
    for split in splits:
      if not files[split]:
        log.warning("grouping: split %s has no files", split)
      shards.extend((split, path) for path in files[split])
    stats_path = os.path.join(tmp, "count_stats.pkl")
    with self._make_beam_pipeline() as p:
      beam_passes.run_counts(p, shards, store.to_json_dict(g), kinds, stats_path)
    stats = beam_passes.read_pickle(stats_path)
    for split in splits:
      stats.setdefault(split, {"rows": 0, "counts": [0] * g.num_groups,
                               "missing": {f: 0 for f in g.features}})
    return stats
