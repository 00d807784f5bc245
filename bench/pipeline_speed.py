"""Wall time of our Ames pipeline vs TFX's stock chicago-taxi pipeline, side by side.

Both run with LocalDagRunner from scratch (fresh metadata, no cache) in their own subprocess,
with the same Beam arguments, one after the other in the same session; the figure that
matters is the ratio. Writes bench/results/pipeline.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(__file__), "results", "pipeline.md")


def run_taxi(root: str, beam_args) -> None:
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi
  here = os.path.dirname(taxi.__file__)
  tfx.orchestration.LocalDagRunner().run(taxi._create_pipeline(  # pylint: disable=protected-access
      pipeline_name="chicago_taxi_native_keras", pipeline_root=os.path.join(root, "pipeline"),
      data_root=os.path.join(here, "data", "simple"),
      module_file=os.path.join(here, "taxi_utils_native_keras.py"),
      serving_model_dir=os.path.join(root, "serving_model"),
      metadata_path=os.path.join(root, "metadata.sqlite"), beam_pipeline_args=beam_args))


def run_ames(root: str, beam_args) -> None:
  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  from pipeline.local_runner import run  # pylint: disable=g-import-not-at-top
  from data import prepare  # pylint: disable=g-import-not-at-top
  cfg = load_config("configs/ames.yaml", overrides={"outputs.root": root, "beam.args": beam_args})
  prepare.prepare(cfg)
  run(cfg)


def _child(name: str, beam_args) -> float:
  with tempfile.TemporaryDirectory() as root:
    cmd = [sys.executable, "-m", "bench.pipeline_speed", "--one", name, "--root", root,
           "--beam_args", json.dumps(beam_args)]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
      raise RuntimeError(f"{name} pipeline failed:\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--one", choices=["taxi", "ames"])
  p.add_argument("--root")
  p.add_argument("--beam_args", default=None,
                 help="JSON list; default: the Ames config's beam.args (the taxi example's own)")
  p.add_argument("--repeats", type=int, default=1)
  args = p.parse_args()
  if args.one:
    beam_args = json.loads(args.beam_args)
    (run_taxi if args.one == "taxi" else run_ames)(args.root, beam_args)
    return

  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  beam_args = json.loads(args.beam_args) if args.beam_args else load_config(
      "configs/ames.yaml").beam.args
  rows = []
  for i in range(args.repeats):
    for name in ("taxi", "ames"):
      print(f"[{i + 1}/{args.repeats}] running {name} pipeline ...", flush=True)
      wall = _child(name, beam_args)
      print(f"    {name}: {wall:.0f} s", flush=True)
      rows.append((name, wall))
  taxi = [w for n, w in rows if n == "taxi"]
  ames = [w for n, w in rows if n == "ames"]
  ratio = (sum(ames) / len(ames)) / (sum(taxi) / len(taxi))
  lines = [
      "# Pipeline wall time: Ames grouped regression vs TFX chicago-taxi (reference)",
      "",
      f"Measured {datetime.date.today()} on {os.cpu_count()} cores, Python "
      f"{platform.python_version()}, LocalDagRunner, fresh metadata, beam args `{beam_args}`.",
      "Each pipeline runs in its own subprocess (imports included), one after the other.",
      "",
      "| pipeline | rows | components | wall (s) |",
      "|---|---:|---:|---:|",
      *[f"| chicago taxi (stock, native Keras) | 15,000 | 9 | {w:.0f} |" for w in taxi],
      *[f"| Ames grouped regression (`make run`) | 2,930 | 10 | {w:.0f} |" for w in ames],
      "",
      f"**Ratio Ames / taxi: {ratio:.2f}x** (mean of {args.repeats} run(s) each).",
      "",
  ]
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
