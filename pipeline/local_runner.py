"""Runs the pipeline with LocalDagRunner (SQLite metadata, Beam DirectRunner), writes the
evaluation report under the config's report_dir and prints the per-group results, the report
path and where the pushed model is."""
from __future__ import annotations

import argparse
import logging
import os
import time

from tfx import v1 as tfx

from pipeline import run_lock, run_summary
from pipeline.report import write_report
from pipeline.config import load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline


def parse_overrides(pairs):
  import yaml  # pylint: disable=g-import-not-at-top
  return {k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in pairs or [])}


def run(cfg) -> run_summary.RunSummary:
  with run_lock.hold(cfg.output_root):  # one writer per outputs root: a second run exits at once
    return _run(cfg)


def _run(cfg) -> run_summary.RunSummary:
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  run_lock.mark_abandoned(connection)
  pipeline = create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection)
  tfx.orchestration.LocalDagRunner().run(pipeline)
  summary = run_summary.summarize(connection)
  write_report(summary, cfg.report_dir, cfg.name)  # sets summary.report_path
  return summary


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  logging.getLogger("absl").setLevel(logging.INFO)
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--config", required=True)
  p.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                 help="override config fields, e.g. model.epochs=5 grouping.k=[4,10]")
  args = p.parse_args()
  cfg = load_config(args.config, overrides=parse_overrides(args.set))
  start = time.time()
  summary = run(cfg)
  print(f"\n== {cfg.name}: pipeline finished in {time.time() - start:.0f} s ==")
  for line in run_summary.describe(summary, cwd=os.getcwd()):
    print(line)


if __name__ == "__main__":
  main()
