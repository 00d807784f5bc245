"""`make bench-models`: every model variant and peer, 5-fold CV on each dataset, plus training
speed; writes bench/results/models.md and models.png.

Quick looks: --datasets ames_kmeans --methods multihead global --folds 2 --skip-speed
(a partial run writes to --out-dir, so point it elsewhere to keep the committed results).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time

from bench.models import cv, datasets, report, settings, speed
from pipeline.config import REPO_ROOT, load_config

log = logging.getLogger("bench.models")


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
  for noisy in ("absl", "tensorflow", "apache_beam"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--config", default=settings.CONFIG_PATH)
  ap.add_argument("--datasets", nargs="*", help="subset of the config's dataset names")
  ap.add_argument("--methods", nargs="*", default=list(cv.METHODS))
  ap.add_argument("--folds", type=int, help="override the config's fold count")
  ap.add_argument("--skip-speed", action="store_true")
  ap.add_argument("--speed-only", action="store_true", help="no CV, only the speed runs")
  ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "bench", "results"))
  ap.add_argument("--render", metavar="JSON", nargs="+",
                  help="only re-write models.md/.png/.json from saved models.json files "
                       "(several: partial runs, e.g. datasets run separately, are merged)")
  ap.add_argument("--note", help="with --render: a line saying how the merged runs were made")
  args = ap.parse_args()
  if args.render:
    results, speed_results, meta = merge(args.render)
    if args.note:
      meta["note"] = args.note
    write(args.out_dir, results, speed_results, meta)
    return

  bench = settings.load(args.config)
  if args.folds:
    bench["folds"] = args.folds
  entries = [e for e in bench["datasets"] if not args.datasets or e["name"] in args.datasets]
  if args.speed_only:
    entries = []
  if args.datasets and len(entries) != len(args.datasets):
    known = [e["name"] for e in bench["datasets"]]
    raise SystemExit(f"unknown dataset(s) in {args.datasets}; known: {known}")

  t_start = time.perf_counter()
  results, described, speed_results = {}, {}, {}
  meta = {"folds": bench["folds"], "fold_seed": bench["fold_seed"],
          "model_overrides": bench.get("model_overrides") or {},
          "validation_share": bench["validation_share"],
          "worst_min": bench["worst_group_min_test_rows"],
          "small_max": bench["small_group_max_train_rows"], "datasets": described,
          "speed_description": (
              f"Synthetic data, {bench['speed']['separate_models_groups']} groups, "
              f"{bench['speed']['separate_models_rows']} rows, configs/synthetic.yaml model "
              "(trunk, batch size). Step time: median over interleaved rounds of timed epochs "
              "after a warm-up epoch. Separate models: the seed article's Example 3 (one "
              "Sequential per group sharing its first Dense layer, fitted one after another) vs "
              f"one multihead model, {bench['speed']['separate_models_epochs']} epochs each, "
              "wall time including build and compile; median over rounds.")}
  if not args.skip_speed:                     # first: short, and every run reports it
    cfg = load_config("configs/synthetic.yaml", overrides={
        f"model.{k}": v for k, v in (bench.get("model_overrides") or {}).items()})
    sp = bench["speed"]
    speed_results.update(speed.step_times(cfg, bench["synthetic"], sp))
    speed_results.update(speed.separate_models(cfg, bench["synthetic"], sp))
    write(args.out_dir, results, speed_results, meta)
  for e in entries:
    t0 = time.perf_counter()
    ds = datasets.load(e, bench["synthetic"])
    results[e["name"]] = cv.run(ds, bench, args.methods)
    g = ds.cfg.grouping
    grouping = (f"K-Means on {g.features} (k={g.k})" if g.mode == "kmeans"
                else f"a priori on `{g.column}` (min_count {g.min_count})")
    described[e["name"]] = {"description": (
        f"`{e['config']}`: {len(ds.frame)} rows, label `{ds.cfg.dataset.label}`, groups "
        f"{grouping}; {len(ds.cfg.dataset.numeric_features)} numeric + "
        f"{len(ds.cfg.dataset.categorical_features)} categorical features"
        + (f"; numerics also piecewise-linear encoded ({ds.cfg.model.numeric_bins} quantile "
           "bins), each neural variant keeping the encoding with the lower validation RMSE"
           if ds.cfg.model.numeric_bins else "") + ".")}
    log.info("%s done in %.0fs", e["name"], time.perf_counter() - t0)
    write(args.out_dir, results, speed_results, meta)     # partial results survive a stop

  meta["run_seconds"] = round(time.perf_counter() - t_start)
  write(args.out_dir, results, speed_results, meta)
  log.info("wrote %s/models.{md,png,json} in %.0fs", args.out_dir, time.perf_counter() - t_start)


def merge(paths):
  """(cv, speed, meta) of several saved runs; later files win on the same dataset or key."""
  cv_all, speed_all, meta = {}, {}, None
  for path in paths:
    with open(path) as f:
      saved = json.load(f)
    cv_all.update(saved.get("cv", {}))
    speed_all.update(saved.get("speed", {}))
    if saved.get("meta"):
      datasets_seen = {**(meta or {}).get("datasets", {}), **saved["meta"].get("datasets", {})}
      meta = {**(meta or {}), **saved["meta"], "datasets": datasets_seen}
  if meta is None:
    raise SystemExit(f"none of {paths} holds the run's meta")
  return cv_all, speed_all, meta


def write(out_dir: str, results, speed_results, meta) -> None:
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "models.json"), "w") as f:
    json.dump({"cv": results, "speed": speed_results, "meta": meta}, f, indent=1)
  with open(os.path.join(out_dir, "models.md"), "w") as f:
    f.write(report.markdown(results, speed_results, meta))
  report.plot(results, os.path.join(out_dir, "models.png"))


if __name__ == "__main__":
  main()
