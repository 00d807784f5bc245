"""Whole-pipeline wall time under each Beam DirectRunner mode, side by side in one process.

Why: every Beam-using component (ExampleGen, StatisticsGen, ExampleValidator, Grouping,
Transform, Evaluator) starts its own Beam pipeline, and multi_processing spawns worker
processes that import TensorFlow for each of them. On small data that start-up dominates; on
large data the parallel workers win. This measures the trade-off on a config's dataset so the
config's `beam.args` default is chosen with numbers (docs/orchestration.md records them).

Each mode runs the full pipeline once, sequentially (never two runs at once), in its own fresh
output root (no cache hits). Timings on a shared machine are noisy: compare the ratios.

  python -m bench.beam_modes --config configs/ames.yaml [--modes in_memory multi_threading]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
import time
from typing import Dict, List

from tfx import v1 as tfx

from data import prepare
from pipeline import timings
from pipeline.config import load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline

log = logging.getLogger("bench.beam_modes")

# "no_args" is in_memory too (Beam's default), but with empty beam_pipeline_args TFX skips
# building an ephemeral TFX sdist per Beam component (it does for any non-empty args).
MODES: Dict[str, List[str]] = {
    "no_args": [],
    "in_memory": ["--direct_running_mode=in_memory"],
    "multi_threading": ["--direct_running_mode=multi_threading", "--direct_num_workers=0"],
    "multi_processing": ["--direct_running_mode=multi_processing", "--direct_num_workers=0"],
}
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Grouping", "GroupedTransform",
                   "GroupedEvaluator")  # execution type names (timings.component_seconds)


def run_mode(config_path: str, mode: str, work_dir: str) -> Dict[str, object]:
  """One full pipeline run with the mode's Beam args; returns wall and per-component seconds."""
  cfg = load_config(config_path, overrides={
      "beam.args": MODES[mode], "outputs.root": os.path.join(work_dir, mode),
      "dataset.csv_dir": os.path.join(work_dir, "data")})
  prepare.prepare(cfg)
  os.makedirs(cfg.output_root, exist_ok=True)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  load_before = os.getloadavg()[0]
  cpu_before = cpu_seconds()
  start = time.time()
  tfx.orchestration.LocalDagRunner().run(
      create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection))
  wall = time.time() - start
  cpu = cpu_seconds() - cpu_before
  per_component = {name: round(secs, 1) for _, name, _, secs in
                   timings.component_seconds(connection)}
  beam_secs = sum(v for k, v in per_component.items() if k in BEAM_COMPONENTS)
  return {"mode": mode, "args": MODES[mode], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
          "load_1min_before": round(load_before, 2),
          "load_1min_after": round(os.getloadavg()[0], 2),
          "beam_components_s": round(beam_secs, 1), "components_s": per_component}


def cpu_seconds() -> float:
  """User+system CPU of this process and its reaped children (Beam's worker processes):
  the work a mode costs, far less sensitive than wall time to other load on a shared box."""
  own = resource.getrusage(resource.RUSAGE_SELF)
  kids = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def markdown(results: List[Dict[str, object]], cores: int) -> str:
  base = next((r["wall_s"] for r in results if r["mode"] == "in_memory"), results[0]["wall_s"])
  base_cpu = next((r["cpu_s"] for r in results if r["mode"] == "in_memory"), results[0]["cpu_s"])
  lines = ["| mode | wall (s) | wall ratio | CPU (s) | CPU ratio | Beam components wall (s) "
           "| load before/after |", "|---|---:|---:|---:|---:|---:|---:|"]
  for r in results:
    lines.append(f"| {r['mode']} | {r['wall_s']:.0f} | {r['wall_s'] / base:.2f} | "
                 f"{r['cpu_s']:.0f} | {r['cpu_s'] / base_cpu:.2f} | {r['beam_components_s']:.0f} | "
                 f"{r['load_1min_before']}/{r['load_1min_after']} |")
  comps = sorted({c for r in results for c in r["components_s"]})
  lines += ["", "| component | " + " | ".join(r["mode"] for r in results) + " |",
            "|---|" + "---:|" * len(results)]
  for c in comps:
    lines.append(f"| {c} | " + " | ".join(str(r["components_s"].get(c, "-")) for r in results)
                 + " |")
  lines.append(f"\n({cores} cores; one run per mode, sequential, fresh output roots)")
  return "\n".join(lines)


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", default="configs/ames.yaml")
  p.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
  p.add_argument("--out", default="bench/results/beam_modes.json",
                 help="JSON results file (repo-relative)")
  args = p.parse_args()
  results = []
  with tempfile.TemporaryDirectory(prefix="beam_modes_") as work_dir:
    for mode in args.modes:
      log.info("beam_modes: running the whole pipeline with %s", MODES[mode])
      results.append(run_mode(args.config, mode, work_dir))
      log.info("beam_modes: %s took %.0f s", mode, results[-1]["wall_s"])
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"config": args.config, "cores": os.cpu_count(), "results": results}, f, indent=2)
  print(markdown(results, os.cpu_count() or 0))


if __name__ == "__main__":
  main()
