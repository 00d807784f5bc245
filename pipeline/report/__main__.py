"""Re-renders the report of a config's latest evaluation from its MLMD store:
`python -m pipeline.report --config configs/ames.yaml [--set outputs.root=...]`."""
from __future__ import annotations

import argparse
import os

from tfx import v1 as tfx

from pipeline import run_summary
from pipeline.config import load_config
from pipeline.local_runner import parse_overrides
from pipeline.report import write_report


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--config", required=True)
  p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override config fields")
  args = p.parse_args()
  cfg = load_config(args.config, overrides=parse_overrides(args.set))
  if not os.path.exists(cfg.metadata_path):
    raise SystemExit(f"no metadata store at {cfg.metadata_path}: run the pipeline first")
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  print(write_report(run_summary.summarize(connection), cfg.report_dir, cfg.name))


if __name__ == "__main__":
  main()
