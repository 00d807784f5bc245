"""Small, fast pipeline configs for tests: a deterministic Ames sample in a temp dir."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from tfx import v1 as tfx

from data import prepare
from pipeline import run_summary
from pipeline.config import PipelineConfig, load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline

FAST = {
    "model.epochs": 4,
    "model.patience": 2,
    "model.batch_size": 128,
    "beam.args": ["--direct_running_mode=in_memory"],
}


def small_config(tmp_dir: str, rows: int = 800, config: str = "configs/ames.yaml",
                 overrides: Optional[Dict[str, Any]] = None) -> PipelineConfig:
  """The named config on a `rows`-row sample, with outputs and data under tmp_dir."""
  o = {**FAST, "dataset.sample_rows": rows, "dataset.csv_dir": os.path.join(tmp_dir, "data"),
       "outputs.root": os.path.join(tmp_dir, "out"), **(overrides or {})}
  cfg = load_config(config, overrides=o)
  prepare.prepare(cfg)
  return cfg


def run(cfg: PipelineConfig, **create_kwargs) -> run_summary.RunSummary:
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  os.makedirs(cfg.output_root, exist_ok=True)
  args = {**pipeline_args(cfg), **create_kwargs}
  tfx.orchestration.LocalDagRunner().run(
      create_pipeline(**args, metadata_connection_config=connection))
  return run_summary.summarize(connection)


def connection(cfg: PipelineConfig):
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
