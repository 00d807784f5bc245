"""K-fold cross-validation of every method on one dataset: the same folds, features and groups
for all of them (fitted on each training fold only)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from bench.models import keras_methods, metrics, peers, prep
from bench.models.datasets import BenchDataset
from bench.models.peers import FoldSplit
from models.grouped_regression import auto, piecewise

log = logging.getLogger(__name__)
REFERENCE = "auto"           # the default variant: paired differences are taken against it

VARIANTS = ("multihead", "embedding", "attention", "global")
# name -> (family, description) in report order
METHODS = {
    "auto": ("chosen",
             "lowest validation RMSE of multihead (both encodings) and boosted (default)"),
    "multihead": ("grouped NN", "shared trunk + partially pooled per-group heads"),
    "boosted": ("grouped trees", "YDF boosted trunk (group as input or not, by validation) "
                "+ pooled group heads"),
    "embedding": ("grouped NN", "group embedding concatenated with the features"),
    "attention": ("grouped NN", "MultiHeadAttention over learned group prototypes"),
    "global": ("pooled", "the same trunk, no group"),
    "lgbm_pooled": ("pooled", "LightGBM without the group"),
    "unpooled_ridge": ("unpooled", "one ridge per group (pooled ridge below the row minimum)"),
    "mixedlm": ("mixed model", "statsmodels MixedLM, linear + random intercept"),
    "lgbm_group": ("peer", "LightGBM with the group as a categorical"),
    "gpboost": ("mixed model", "GPBoost: boosting + grouped random intercept"),
}


def _method_fns(ds: BenchDataset, bench: Dict[str, Any]):
  """({method: fold -> test predictions or (predictions, seconds)}, the shared fit cache)."""
  fits: Dict[Any, Any] = {}    # (fold, candidate) -> (test pred, val RMSE): auto reuses fits

  def fit(s: FoldSplit, candidate: str):
    if (s.seed, candidate) not in fits:
      t0 = time.perf_counter()
      pred, val_rmse = keras_methods.fit_candidate(ds.cfg, candidate, s,
                                                   bench.get("model_overrides"))
      fits[(s.seed, candidate)] = (pred, val_rmse, time.perf_counter() - t0)
    return fits[(s.seed, candidate)]

  def chosen(s: FoldSplit, variant: str) -> Tuple[np.ndarray, float]:
    """(test predictions, fit seconds summed over its candidates): every candidate of `variant`
    (auto.candidates), the lowest validation RMSE kept."""
    names = auto.candidates(variant, piecewise.width(ds.cfg.model.numeric_bins))
    results = {c: fit(s, c) for c in names}
    best = auto.choose({c: r[1] for c, r in results.items()})
    return results[best][0], sum(r[2] for r in results.values())

  fns: Dict[str, Callable[[FoldSplit], np.ndarray]] = {
      v: (lambda s, v=v: chosen(s, v)) for v in VARIANTS + (auto.AUTO, auto.BOOSTED)}
  fns.update({
      "lgbm_pooled": lambda s: peers.lightgbm(s, bench["lightgbm"], with_group=False),
      "unpooled_ridge": lambda s: peers.unpooled_ridge(s, float(bench["ridge_alpha"]),
                                                       int(bench["unpooled_min_rows"])),
      "mixedlm": lambda s: peers.mixedlm(s, int(bench["mixedlm_max_iter"])),
      "lgbm_group": lambda s: peers.lightgbm(s, bench["lightgbm"], with_group=True),
      "gpboost": lambda s: peers.gpboost(s, bench["gpboost"]),
  })
  return fns, fits


def fold_indices(n: int, folds: int, seed: int) -> List[np.ndarray]:
  """Test-row indices of each fold: one fixed permutation cut into `folds` parts."""
  return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def split_fold(ds: BenchDataset, train_idx: np.ndarray, test_idx: np.ndarray, fold: int,
               bench: Dict[str, Any]) -> FoldSplit:
  cfg = ds.cfg
  train_frame, test_frame = ds.frame.iloc[train_idx], ds.frame.iloc[test_idx]
  t = prep.fit(cfg, train_frame)
  full, test = prep.apply(cfg, t, train_frame), prep.apply(cfg, t, test_frame)
  order = np.random.default_rng(int(bench["fold_seed"]) + 1000 + fold).permutation(len(train_idx))
  n_val = max(1, int(round(float(bench["validation_share"]) * len(train_idx))))
  return FoldSplit(full=full, inner=full.take(order[n_val:]), val=full.take(order[:n_val]),
                   test=test, vocab_sizes=t.vocab_sizes, num_groups=t.grouping.num_groups,
                   seed=fold)


def run(ds: BenchDataset, bench: Dict[str, Any], methods: List[str]) -> Dict[str, Dict[str, float]]:
  """{method: summary} over the folds; logs each fit as it finishes."""
  fns, fits = _method_fns(ds, bench)
  unknown = [m for m in methods if m not in fns]
  if unknown:
    raise ValueError(f"unknown method(s) {unknown}; known: {list(fns)}")
  scores: Dict[str, List[metrics.FoldScore]] = {m: [] for m in methods}
  all_idx = np.arange(len(ds.frame))
  for fold, test_idx in enumerate(fold_indices(len(ds.frame), int(bench["folds"]),
                                               int(bench["fold_seed"]))):
    s = split_fold(ds, np.setdiff1d(all_idx, test_idx), test_idx, fold, bench)
    log.info("%s fold %d/%d: %d train (%d val), %d test rows, %d groups", ds.name, fold + 1,
             bench["folds"], len(s.full.y), len(s.val.y), len(s.test.y), s.num_groups)
    for m in methods:
      t0 = time.perf_counter()
      pred = fns[m](s)
      secs = time.perf_counter() - t0
      if isinstance(pred, tuple):      # (predictions, seconds its fits took, shared fits incl.)
        pred, secs = pred
      scores[m].append(metrics.score_fold(
          s.test.y, pred, s.test.group, s.full.group, secs,
          worst_min_test_rows=int(bench["worst_group_min_test_rows"]),
          small_max_train_rows=int(bench["small_group_max_train_rows"])))
      log.info("  %-15s rmse %.4f  (%.1fs)", m, metrics.rmse(scores[m][-1].sq_err), secs)
  out = {m: metrics.summarise(f) for m, f in scores.items()}
  if REFERENCE in out:  # mean seconds per fold of each candidate: auto's cost vs one fit
    names = auto.candidates(auto.AUTO, piecewise.width(ds.cfg.model.numeric_bins))
    out[REFERENCE]["candidate_fit_seconds"] = {
        c: float(np.mean([v[2] for (_, k), v in fits.items() if k == c])) for c in names}
  if REFERENCE in scores:  # the default minus each rival, same rows: the goals' noise level
    for m in scores:
      if m != REFERENCE:
        out[m]["reference_minus"] = metrics.paired_vs(scores[m], scores[REFERENCE])
  return out
