"""`make bench-intervals`: coverage and mean width of 90% prediction intervals, 5-fold CV on
every bench.models dataset (same folds, features and groups as bench/models): the multihead
(models/grouped_regression/intervals.py, calibrated on the fold's validation rows), statsmodels
MixedLM (fixed-effect uncertainty + random intercept's conditional variance + residual) and
GPBoost (`predict_var=True`). Writes bench/results/intervals.md (+ .json).

Goals: coverage within +-3 points of 90% on every dataset; our mean width at most 10% above the
narrowest peer that is also within +-3 points.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
import warnings
from typing import Dict, List

import numpy as np
from scipy import stats

from bench.models import cv, datasets, keras_methods, peers, settings
from bench.models.prep import design_matrix
from models.grouped_regression import keras_intervals
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer
from pipeline.config import REPO_ROOT

log = logging.getLogger("bench.intervals")
LEVEL = 0.9
METHODS = ("multihead", "mixedlm", "gpboost")


def ours(ds, bench, s) -> Dict[str, np.ndarray]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.keras.backend.clear_session()
  cfg = ds.cfg
  m = dataclasses.replace(cfg.model, **(bench.get("model_overrides") or {}))
  cfg = dataclasses.replace(cfg, model=m)
  hp = keras_methods.hparams(cfg, "multihead", seed=m.seed + s.seed)
  spec = keras_methods.model_inputs(cfg, s)
  model = model_lib.build_model(spec, hp)
  train_ds = trainer.dataset_from_arrays(s.inner.keras, s.inner.y, m.batch_size, seed=s.seed)
  val_ds = trainer.dataset_from_arrays(s.val.keras, s.val.y, 1024, shuffle=False)
  refit_ds = trainer.dataset_from_arrays(s.inner.keras, s.inner.y, 1024, shuffle=False)
  hist = trainer.fit(model, train_ds, val_ds, epochs=m.epochs, patience=m.patience, verbose=0,
                     refit_ds=refit_ds)
  table, _ = keras_intervals.fit(model, refit_ds, val_ds, spec.num_groups, LEVEL,
                                 getattr(hist, "refit", None))
  mu = model(keras_methods.as_inputs(s.test.keras), training=False).numpy().reshape(-1)
  sd = table.sd[s.test.group]
  return {"mu": mu, "lower": mu - table.z * sd, "upper": mu + table.z * sd}


def mixedlm(bench, s) -> Dict[str, np.ndarray]:
  import statsmodels.api as sm  # pylint: disable=g-import-not-at-top
  x_tr = sm.add_constant(design_matrix(s.full, s.vocab_sizes), has_constant="add")
  x_te = sm.add_constant(design_matrix(s.test, s.vocab_sizes), has_constant="add")
  keep = peers._independent_columns(x_tr)  # pylint: disable=protected-access
  x_tr, x_te = x_tr[:, keep], x_te[:, keep]
  mu0 = float(np.mean(s.full.y))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = sm.MixedLM(s.full.y - mu0, x_tr, groups=s.full.group).fit(
        reml=True, method=["bfgs", "lbfgs"], maxiter=int(bench["mixedlm_max_iter"]))
  k = x_tr.shape[1]
  fe_cov = np.asarray(res.cov_params())[:k, :k]
  sigma2, tau2 = float(res.scale), float(np.asarray(res.cov_re).reshape(-1)[0])
  try:
    effects = {g: float(np.asarray(v)[0]) for g, v in res.random_effects.items()}
  except ValueError:
    effects = {}
  n_g = np.bincount(s.full.group, minlength=s.num_groups)
  re_var = np.where(n_g > 0, 1.0 / (n_g / sigma2 + 1.0 / max(tau2, 1e-12)), tau2) \
      if tau2 > 0 else np.zeros_like(n_g, dtype=float)
  mu = mu0 + x_te @ np.asarray(res.fe_params) + np.array(
      [effects.get(g, 0.0) for g in s.test.group])
  var = np.einsum("ij,jk,ik->i", x_te, fe_cov, x_te) + re_var[s.test.group] + sigma2
  z = stats.norm.ppf(0.5 + LEVEL / 2)
  return {"mu": mu, "lower": mu - z * np.sqrt(var), "upper": mu + z * np.sqrt(var)}


def gpboost(bench, s) -> Dict[str, np.ndarray]:
  import gpboost as gpb  # pylint: disable=g-import-not-at-top
  p = bench["gpboost"]
  mean, std = float(np.mean(s.inner.y)), float(max(np.std(s.inner.y), 1e-12))
  cats = peers._tree_categoricals(s, with_group=False)  # pylint: disable=protected-access
  mat = lambda d: peers._tree_matrix(d, False)  # pylint: disable=protected-access
  gp_model = gpb.GPModel(group_data=s.inner.group, likelihood="gaussian")
  gp_model.set_prediction_data(group_data_pred=s.val.group)
  train = gpb.Dataset(mat(s.inner), (s.inner.y - mean) / std, categorical_feature=cats)
  val = gpb.Dataset(mat(s.val), (s.val.y - mean) / std, reference=train,
                    categorical_feature=cats)
  params = {"learning_rate": p["learning_rate"], "num_leaves": int(p["num_leaves"]),
            "max_depth": int(p["max_depth"]), "min_data_in_leaf": int(p["min_data_in_leaf"]),
            "verbose": -1, "num_threads": 1, "seed": s.seed}
  booster = gpb.train(params, train, num_boost_round=int(p["max_rounds"]), gp_model=gp_model,
                      valid_sets=[val], early_stopping_rounds=int(p["early_stopping"]),
                      use_gp_model_for_validation=True, verbose_eval=False)
  pred = booster.predict(data=mat(s.test), group_data_pred=s.test.group, predict_var=True,
                         pred_latent=False)
  mu = mean + std * np.asarray(pred["response_mean"])
  sd = std * np.sqrt(np.asarray(pred["response_var"]))
  z = stats.norm.ppf(0.5 + LEVEL / 2)
  return {"mu": mu, "lower": mu - z * sd, "upper": mu + z * sd}


def run_dataset(ds, bench, methods: List[str]) -> Dict[str, Dict[str, float]]:
  fns = {"multihead": lambda s: ours(ds, bench, s), "mixedlm": lambda s: mixedlm(bench, s),
         "gpboost": lambda s: gpboost(bench, s)}
  acc = {m: {"covered": 0, "width": 0.0, "rows": 0, "secs": 0.0} for m in methods}
  all_idx = np.arange(len(ds.frame))
  for fold, test_idx in enumerate(cv.fold_indices(len(ds.frame), int(bench["folds"]),
                                                  int(bench["fold_seed"]))):
    s = cv.split_fold(ds, np.setdiff1d(all_idx, test_idx), test_idx, fold, bench)
    for m in methods:
      t0 = time.perf_counter()
      out = fns[m](s)
      a = acc[m]
      a["secs"] += time.perf_counter() - t0
      a["covered"] += int(np.sum((s.test.y >= out["lower"]) & (s.test.y <= out["upper"])))
      a["width"] += float(np.sum(out["upper"] - out["lower"]))
      a["rows"] += len(s.test.y)
      log.info("%s fold %d %-9s coverage %.3f width %.4g", ds.name, fold, m,
               np.mean((s.test.y >= out["lower"]) & (s.test.y <= out["upper"])),
               np.mean(out["upper"] - out["lower"]))
  return {m: {"coverage": a["covered"] / a["rows"], "mean_width": a["width"] / a["rows"],
              "rows": a["rows"], "seconds": a["secs"]} for m, a in acc.items()}


def render(results: Dict, folds: int) -> str:
  lines = ["# Prediction intervals (90%): coverage and mean width", "",
           f"`make bench-intervals` ({folds}-fold CV, bench/models datasets and folds; ours: "
           "multihead + models/grouped_regression/intervals.py calibrated on each fold's "
           "validation rows). Goals: coverage in [87, 93]%; our width <= 1.10 x the narrowest "
           "peer that is also in [87, 93]%.", "",
           "| dataset | method | coverage % | mean width | coverage goal | width goal |",
           "|---|---|---|---|---|---|"]
  for name, r in results.items():
    ok = {m: abs(v["coverage"] - LEVEL) <= 0.03 for m, v in r.items()}
    peer_w = [v["mean_width"] for m, v in r.items() if m != "multihead" and ok[m]]
    for m, v in r.items():
      wgoal = ""
      if m == "multihead":
        wgoal = ("no peer in range" if not peer_w else
                 ("met" if v["mean_width"] <= 1.10 * min(peer_w) else "MISSED") +
                 f" ({v['mean_width'] / min(peer_w):.2f}x)")
      lines.append(f"| {name} | {m} | {100 * v['coverage']:.1f} | {v['mean_width']:.4g} | "
                   f"{'met' if ok[m] else 'MISSED'} | {wgoal} |")
  return "\n".join(lines) + "\n"


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
  for noisy in ("absl", "tensorflow"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--datasets", nargs="*")
  ap.add_argument("--methods", nargs="*", default=list(METHODS))
  ap.add_argument("--folds", type=int)
  ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "bench", "results"))
  args = ap.parse_args()
  bench = settings.load(settings.CONFIG_PATH)
  if args.folds:
    bench["folds"] = args.folds
  os.makedirs(args.out_dir, exist_ok=True)
  results = {}
  for e in bench["datasets"]:
    if args.datasets and e["name"] not in args.datasets:
      continue
    results[e["name"]] = run_dataset(datasets.load(e, bench["synthetic"]), bench, args.methods)
    with open(os.path.join(args.out_dir, "intervals.json"), "w") as f:
      json.dump(results, f, indent=1)
    with open(os.path.join(args.out_dir, "intervals.md"), "w") as f:
      f.write(render(results, int(bench["folds"])))
    log.info("%s: %s", e["name"], results[e["name"]])


if __name__ == "__main__":
  main()
