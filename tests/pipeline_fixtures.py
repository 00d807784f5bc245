"""Small, fast pipeline configs for tests: a deterministic Ames sample in a temp dir."""
from __future__ import annotations

import os
import glob
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from components.grouping import fitting, store
from data import prepare
from pipeline import run_summary
from pipeline.config import PipelineConfig, load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline

FAST = {
    # one candidate: the pipeline's mechanics do not depend on the variant; `auto` (three
    # candidates) is covered end to end by tests/test_pipeline_auto.py
    "model.variant": "multihead",
    "model.epochs": 4,
    "model.patience": 2,
    "model.batch_size": 128,
    # no piecewise bins: one Trainer fit instead of two and no quantile analyzers in Transform;
    # the bins go through the whole pipeline in tests/test_pipeline_auto.py
    "model.numeric_bins": 0,
    # empty: any flag makes TFX build an sdist per Beam component; in_memory is the default
    "beam.args": [],
}


def small_config(tmp_dir: str, rows: int = 800, config: str = "configs/ames.yaml",
                 overrides: Optional[Dict[str, Any]] = None) -> PipelineConfig:
  """The named config on a `rows`-row sample, with outputs and data under tmp_dir."""
  o = {**FAST, "dataset.sample_rows": rows, "dataset.csv_dir": os.path.join(tmp_dir, "data"),
       "outputs.root": os.path.join(tmp_dir, "out"), **(overrides or {})}
  cfg = load_config(config, overrides=o)
  prepare.prepare(cfg)
  return cfg


def run(cfg: PipelineConfig, node_beam_args: Optional[Dict[str, Sequence[str]]] = None,
        **create_kwargs) -> run_summary.RunSummary:
  """Runs cfg's pipeline with LocalDagRunner. `node_beam_args` {node id: flags} adds Beam flags
  to single components (TFX's with_beam_pipeline_args), so a test can run one component in
  multi-process Beam without every other one paying for worker start-up and an sdist."""
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  os.makedirs(cfg.output_root, exist_ok=True)
  args = {**pipeline_args(cfg), **create_kwargs}
  pipeline = create_pipeline(**args, metadata_connection_config=connection)
  nodes = {c.id: c for c in pipeline.components}
  for node_id, flags in (node_beam_args or {}).items():
    nodes[node_id].with_beam_pipeline_args(list(flags))
  tfx.orchestration.LocalDagRunner().run(pipeline)
  return run_summary.summarize(connection)


def connection(cfg: PipelineConfig):
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)


def latest_split_examples(cfg: PipelineConfig, split: str) -> List[bytes]:
  """Serialized tf.Examples of CsvExampleGen's latest `split` in cfg's pipeline root."""
  dirs = glob.glob(os.path.join(cfg.pipeline_root, "CsvExampleGen", "examples", "*"))
  assert dirs, f"no ExampleGen output under {cfg.pipeline_root}"
  latest = max(dirs, key=lambda d: int(os.path.basename(d)))
  files = sorted(glob.glob(os.path.join(latest, f"Split-{split}", "*")))
  assert files, f"no {split} split under {latest}"
  return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _value(feature: tf.train.Feature):
  kind = feature.WhichOneof("kind")
  values = list(getattr(feature, kind).value) if kind else []
  return values[0] if values else None


def assigned_groups(grouping_uri: str, examples: Sequence) -> np.ndarray:
  """The grouping artifact's own assignment (NumPy, fitting.assign) of raw tf.Examples (parsed
  protos or serialized bytes): the reference the serving graph must agree with."""
  parsed = [tf.train.Example.FromString(e) if isinstance(e, bytes) else e for e in examples]
  g = store.load(grouping_uri)
  columns = {}
  for name in g.features:
    col = np.empty(len(parsed), dtype=object)
    for i, ex in enumerate(parsed):
      f = ex.features.feature
      col[i] = _value(f[name]) if name in f else None
    columns[name] = col
  return fitting.assign(g, columns)
