"""Wall time of our Ames pipeline vs TFX's stock chicago-taxi pipeline, side by side.

Both run with LocalDagRunner from scratch (fresh metadata, no cache) in their own subprocess,
with the same Beam arguments, one after the other in the same session; the figure that
matters is the ratio. Ames runs as `make run` does (configs/ames.yaml unchanged: data step,
pipeline, report). Per component, the time comes from ML Metadata (each execution's create ->
last update) and the peak RSS from the child's process tree sampled while it ran
(bench/scale/measure.py). Writes bench/results/pipeline.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Dict, List

from bench.scale import measure, report

RESULTS = os.path.join(os.path.dirname(__file__), "results", "pipeline.md")
TARGET = 0.8
NAMES = {"taxi": "chicago taxi (stock, native Keras)",
         "ames": "Ames grouped regression (`make run`)",
         "ames-one": "Ames, one network (`model.variant=multihead`, `model.numeric_bins=0`)"}
ROWS = {"taxi": 15_000, "ames": 2_930, "ames-one": 2_930}
# Context, not the target: the same pipeline when its Trainer fits one network, as taxi's does
# (the default `auto` fits three candidates and keeps the best on eval; issue 13's accuracy).
ONE_MODEL = {"model.variant": "multihead", "model.numeric_bins": 0}


def _span(root: str, name: str, start: float) -> None:
  """Steps outside MLMD (data preparation, the report) for the per-component table."""
  with open(os.path.join(root, "spans.txt"), "a") as f:
    f.write(f"{name} {start} {time.time()}\n")


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


def run_ames(root: str, beam_args, overrides=None) -> None:
  """What `make run` runs (data step, pipeline, report), under `root`; `overrides` as --set."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from data import prepare  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  from pipeline.from_config import pipeline_args  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  from pipeline.report import write_report  # pylint: disable=g-import-not-at-top
  cfg = load_config("configs/ames.yaml", overrides={"outputs.root": root, "beam.args": beam_args,
                                                    **(overrides or {})})
  start = time.time()
  prepare.prepare(cfg)
  _span(root, "data", start)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  tfx.orchestration.LocalDagRunner().run(
      create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection))
  start = time.time()
  write_report(run_summary.summarize(connection), cfg.report_dir, cfg.name)
  _span(root, "Report", start)


def _child(name: str, beam_args, work: str) -> Dict:
  root = tempfile.mkdtemp(prefix=f"pipeline-{name}-", dir=work)
  try:
    m = measure.run_child(["bench.pipeline_speed", "--one", name, "--root", root,
                           "--beam_args", json.dumps(beam_args)],
                          os.path.join(root, "metadata.sqlite"),
                          extra_spans=os.path.join(root, "spans.txt"))
  finally:
    shutil.rmtree(root, ignore_errors=True)
  if m.returncode != 0:
    raise RuntimeError(f"{name} pipeline failed:\n{m.stderr_tail}")
  # Ames runs Grouped* subclasses of the stock Transform, Trainer and Evaluator: one row each.
  components = {c[len("Grouped"):] if c.startswith("Grouped") else c: v
                for c, v in m.components.items()}
  return {"pipeline": name, "wall_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb,
          "components": components}


def _secs(x: float) -> str:
  return f"{x:.0f}" if x >= 0.5 else "<1"


def _breakdown(runs: List[Dict]) -> List[str]:
  """One column per pipeline: mean seconds (and the range over repeats), share of the mean wall
  time and the highest peak RSS, per component; then the difference of the means, Ames minus
  taxi."""
  names = sorted(report._order({n for r in runs for n in r["components"]}),  # pylint: disable=protected-access
                 key=lambda n: n != "data")
  pipelines = [p for p in NAMES if any(r["pipeline"] == p for r in runs)]

  def values(pipeline, fn):
    return [fn(r) for r in runs if r["pipeline"] == pipeline]

  def mean(pipeline, fn):
    xs = values(pipeline, fn)
    return sum(xs) / len(xs) if xs else 0.0

  def seconds(n):
    return lambda r: r["components"].get(n, {}).get("seconds", 0.0)

  def outside(r):
    return r["wall_s"] - sum(c["seconds"] for c in r["components"].values())

  def wall(r):
    return r["wall_s"]

  def cell(pipeline, fn, mb=None):
    xs = values(pipeline, fn)
    spread = f" [{_secs(min(xs))}-{_secs(max(xs))}]" if _secs(min(xs)) != _secs(max(xs)) else ""
    share = f" ({100 * mean(pipeline, fn) / mean(pipeline, wall):.0f}%)"
    return f"{_secs(mean(pipeline, fn))}{spread}{share}" + (f" / {mb:.0f}" if mb else "")

  lines = ["| component | " + " | ".join(f"{p}: s (% of wall) / peak MB" for p in pipelines)
           + " | Ames - taxi (s) |",
           "|---|" + "---:|" * (len(pipelines) + 1)]
  for n in names:
    cells = []
    for p in pipelines:
      present = [r["components"][n] for r in runs if r["pipeline"] == p and n in r["components"]]
      mb = max((c["peak_rss_mb"] or 0) for c in present) if present else 0
      cells.append(cell(p, seconds(n), mb) if present else "-")
    diff = mean("ames", seconds(n)) - mean("taxi", seconds(n))
    lines.append(f"| {n} | " + " | ".join(cells) + f" | {diff:+.0f} |")
  lines.append("| outside the components (imports, DAG set-up, between components) | "
               + " | ".join(cell(p, outside) for p in pipelines)
               + f" | {mean('ames', outside) - mean('taxi', outside):+.0f} |")
  lines.append("| **whole process** | " + " | ".join(
      f"**{_secs(mean(p, wall))}** / {max(values(p, lambda r: r['peak_rss_mb'])):.0f}"
      for p in pipelines) + f" | **{mean('ames', wall) - mean('taxi', wall):+.0f}** |")
  return lines


def write(runs: List[Dict], beam_args, repeats: int, load_start, load_end,
          path: str = RESULTS) -> List[str]:
  mean = {n: sum(r["wall_s"] for r in runs if r["pipeline"] == n) /
          max(1, sum(1 for r in runs if r["pipeline"] == n)) for n in NAMES}
  ratio = mean["ames"] / mean["taxi"]
  one = [r for r in runs if r["pipeline"] == "ames-one"]

  def trainer_seconds(pipeline):
    return [r["components"].get("Trainer", {}).get("seconds", 0.0)
            for r in runs if r["pipeline"] == pipeline]

  trainer, taxi_trainer, one_trainer = (trainer_seconds(p) for p in ("ames", "taxi", "ames-one"))
  ames_wall = [r["wall_s"] for r in runs if r["pipeline"] == "ames"]
  no_trainer = [w - t for w, t in zip(ames_wall, trainer)]
  lines = [
      "# Pipeline wall time: Ames grouped regression vs TFX chicago-taxi (reference)",
      "",
      f"Measured {datetime.datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores, Python "
      f"{platform.python_version()}, LocalDagRunner, fresh metadata, beam args `{beam_args}`; "
      f"load average {load_start} at the start, {load_end} at the end (shared machine: compare "
      "within this run).",
      "Each pipeline runs in its own subprocess (imports included), one after the other. "
      "Ames runs `configs/ames.yaml` as is, including `model.variant: auto` (the Trainer fits "
      "three candidates and keeps the best on eval).",
      "",
      "| pipeline | rows | wall (s) | peak RSS MB (tree) |",
      "|---|---:|---:|---:|",
      *[f"| {NAMES[r['pipeline']]} | {ROWS[r['pipeline']]:,} | {r['wall_s']:.0f} | "
        f"{r['peak_rss_mb']:.0f} |" for r in runs],
      "",
      f"**Ratio Ames / taxi: {ratio:.2f}x** (mean of {repeats} run(s) each; target <= "
      f"{TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}).",
      *([f"Context, not the target: Ames with one network in its Trainer (as taxi trains one), "
         f"{mean['ames-one'] / mean['taxi']:.2f}x taxi; its Trainer took "
         f"{', '.join(f'{t:.0f} s' for t in one_trainer)}."] if one else []),
      "",
      "## Per component (ML Metadata execution spans)",
      "",
      "Mean seconds over the repeats [range] from each execution's create to last-update time "
      "in MLMD (a component's driver, executor and publish); `data` and `Report` are the steps "
      "`make run` adds around the pipeline. Transform, Trainer and Evaluator are Ames's Grouped* "
      "subclasses of the stock components. Peak MB: the child's process tree while the "
      "component ran (highest over the repeats).",
      "",
      *_breakdown(runs),
      "",
      f"Trainer share: Ames {', '.join(f'{t:.0f} s' for t in trainer)} "
      f"({', '.join(f'{100 * t / w:.0f}%' for t, w in zip(trainer, ames_wall))} "
      f"of its wall time; `auto` trains three candidates) vs taxi "
      f"{', '.join(f'{t:.0f} s' for t in taxi_trainer)}. Ames without its Trainer: "
      f"{', '.join(f'{t:.0f} s' for t in no_trainer)}.",
      "",
  ]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return lines


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--one", choices=list(NAMES))
  p.add_argument("--pipelines", default=",".join(NAMES),
                 help="comma-separated, run in this order each repeat (default: all, "
                 f"{','.join(NAMES)})")
  p.add_argument("--root")
  p.add_argument("--beam_args", default=None,
                 help="JSON list; default: the Ames config's beam.args (the taxi example's own)")
  p.add_argument("--repeats", type=int, default=1)
  p.add_argument("--render", help="re-render pipeline.md from a saved runs JSON (no running)")
  args = p.parse_args()
  if args.one:
    beam_args = json.loads(args.beam_args)
    if args.one == "taxi":
      run_taxi(args.root, beam_args)
    else:
      run_ames(args.root, beam_args, ONE_MODEL if args.one == "ames-one" else None)
    return
  if args.render:
    with open(args.render) as f:
      saved = json.load(f)
    print("\n".join(write(**saved)))
    return

  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  beam_args = json.loads(args.beam_args) if args.beam_args else load_config(
      "configs/ames.yaml").beam.args
  load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
  work = tempfile.mkdtemp(prefix="bench-pipeline-")
  runs = []
  for i in range(args.repeats):
    for name in args.pipelines.split(","):
      print(f"[{i + 1}/{args.repeats}] running {name} pipeline ...", flush=True)
      runs.append(_child(name, beam_args, work))
      print(f"    {name}: {runs[-1]['wall_s']:.0f} s", flush=True)
  saved = dict(runs=runs, beam_args=beam_args, repeats=args.repeats, load_start=load_start,
               load_end=" ".join(f"{x:.1f}" for x in os.getloadavg()))
  with open(os.path.join(work, "runs.json"), "w") as f:
    json.dump(saved, f, indent=1)
  print(f"measurements saved to {os.path.join(work, 'runs.json')}", flush=True)
  print("\n".join(write(**saved)))


if __name__ == "__main__":
  main()
