"""A copy of a run's CSV with one group's TRAINING labels shifted, eval and test rows honest.

CsvExampleGen splits rows by a hash of the whole serialized tf.Example, label included, so
changing a label can move a row out of train. Only rows that are in the train split of a
finished run, and whose shifted example still hashes into train (checked with ExampleGen's own
partition function), are shifted: the eval and test splits of the corrupted data are then
byte-for-byte the honest ones, and `split_records` lets a test check exactly that. Group ids are
the grouping artifact's own assignment (fitting.assign on the artifact), not a rewritten copy.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2

from models.grouped_regression import features as fk
from pipeline.config import SPLITS, PipelineConfig
from tests import pipeline_fixtures as fx


def _records(pattern: str) -> List[bytes]:
  files = sorted(glob.glob(pattern))
  assert files, f"no TFRecords match {pattern}"
  return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _latest_dir(pattern: str) -> str:
  dirs = glob.glob(pattern)
  assert dirs, f"nothing matches {pattern}"
  return max(dirs, key=lambda d: int(os.path.basename(d)))


def split_records(cfg: PipelineConfig, split: str) -> List[bytes]:
  """The latest CsvExampleGen `split` of cfg's pipeline root as sorted deterministic
  serializations (ExampleGen's own bytes may order the feature map differently run to run)."""
  d = _latest_dir(os.path.join(cfg.pipeline_root, "CsvExampleGen", "examples", "*"))
  return sorted(tf.train.Example.FromString(r).SerializeToString(deterministic=True)
                for r in _records(os.path.join(d, f"Split-{split}", "*")))


def _latest_grouping_uri(cfg: PipelineConfig) -> str:
  return _latest_dir(os.path.join(cfg.pipeline_root, "Grouping", "grouping", "*"))


def _value(feature: tf.train.Feature):
  kind = feature.WhichOneof("kind")
  values = list(getattr(feature, kind).value) if kind else []
  return values[0] if values else None


def _key(example: tf.train.Example, kinds: Dict[str, str], skip: Tuple[str, ...]) -> Tuple:
  f = example.features.feature
  return tuple((name, _value(f[name]) if name in f else None)
               for name in sorted(kinds) if name not in skip)


def _csv_key(row: Dict[str, str], kinds: Dict[str, str], skip: Tuple[str, ...]) -> Tuple:
  """The key `_key` gives the tf.Example that CsvExampleGen makes of this CSV row."""
  out = []
  for name in sorted(kinds):
    if name in skip:
      continue
    text = row[name]
    if text == "":
      v = None
    elif kinds[name] == "int64_list":
      v = int(text)
    elif kinds[name] == "float_list":
      v = float(np.float32(float(text)))
    else:
      v = text.encode()
    out.append((name, v))
  return tuple(out)


def _stays_in_train(example: tf.train.Example, cfg: PipelineConfig) -> bool:
  sizes = [cfg.dataset.split_sizes[s] for s in SPLITS]
  split_config = example_gen_pb2.SplitConfig(splits=[
      example_gen_pb2.SplitConfig.Split(name=s, hash_buckets=n) for s, n in zip(SPLITS, sizes)])
  buckets = list(np.cumsum(sizes))
  return base_example_gen_executor._PartitionFn(  # pylint: disable=protected-access
      example, len(SPLITS), buckets, split_config) == 0


def write_shifted_copy(cfg: PipelineConfig, out_dir: str, group: int, shift: float,
                       group_feature: str = fk.GROUP_KEY) -> int:
  """Writes out_dir/<name>.csv: cfg's CSV with `shift` added to the label of group `group`'s
  train rows (as assigned in cfg's latest run). Returns how many rows were shifted."""
  label = cfg.dataset.label
  src = os.path.join(cfg.csv_dir, f"{cfg.name}.csv")
  df = pd.read_csv(src, dtype=str, keep_default_na=False)
  d = _latest_dir(os.path.join(cfg.pipeline_root, "CsvExampleGen", "examples", "*"))
  train = [tf.train.Example.FromString(r)
           for r in _records(os.path.join(d, "Split-train", "*"))]
  groups = fx.assigned_groups(_latest_grouping_uri(cfg), train)
  kinds = {n: f.WhichOneof("kind") for ex in train for n, f in ex.features.feature.items()
           if n != group_feature and f.WhichOneof("kind")}
  missing = sorted(set(kinds) - set(df.columns))
  assert not missing, f"{src}: columns {missing} are in the examples but not in the CSV"
  skip = (label, group_feature)
  new_label: Dict[Tuple, Optional[str]] = {}
  for ex, g in zip(train, groups):
    if g != group:
      continue
    shifted = tf.train.Example()
    shifted.CopyFrom(ex)
    y = float(np.float32(ex.features.feature[label].float_list.value[0] + shift))
    shifted.features.feature[label].float_list.value[:] = [y]
    key = _key(shifted, kinds, skip)
    # two identical houses would make the row ambiguous: leave such rows honest
    new_label[key] = None if key in new_label else (repr(y) if _stays_in_train(shifted, cfg)
                                                    else None)
  shifted_rows = 0
  for i, row in enumerate(df.to_dict("records")):
    text = new_label.get(_csv_key(row, kinds, skip))
    if text is not None:
      df.at[i, label] = text
      shifted_rows += 1
  os.makedirs(out_dir, exist_ok=True)
  df.to_csv(os.path.join(out_dir, f"{cfg.name}.csv"), index=False)
  return shifted_rows
