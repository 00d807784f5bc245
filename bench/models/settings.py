"""Loads bench/models/config.yaml: the benchmark's own choices (folds, peers, speed runs)."""
from __future__ import annotations

import os
from typing import Any, Dict

import yaml

CONFIG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.yaml")
_REQUIRED = ("folds", "fold_seed", "validation_share", "datasets", "synthetic", "speed")


def load(path: str = CONFIG_PATH) -> Dict[str, Any]:
  with open(path) as f:
    cfg = yaml.safe_load(f) or {}
  missing = [k for k in _REQUIRED if k not in cfg]
  if missing:
    raise ValueError(f"{path}: missing field(s) {missing}")
  if int(cfg["folds"]) < 2:
    raise ValueError(f"{path}: folds must be >= 2 (got {cfg['folds']})")
  names = [d["name"] for d in cfg["datasets"]]
  if len(set(names)) != len(names):
    raise ValueError(f"{path}: dataset names must be unique (got {names})")
  return cfg
