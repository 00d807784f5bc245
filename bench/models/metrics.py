"""Per-method scores over the CV folds: overall, per-group, worst-group and small-group RMSE."""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np


@dataclasses.dataclass
class FoldScore:
  sq_err: np.ndarray            # [test rows] squared errors
  group_rmse: List[float]       # per group with >= worst_min test rows
  small_sq_err: np.ndarray      # squared errors of rows whose group had <= small_max train rows
  fit_seconds: float


def rmse(sq_err: np.ndarray) -> float:
  return float(np.sqrt(np.mean(sq_err))) if len(sq_err) else float("nan")


def score_fold(y: np.ndarray, pred: np.ndarray, test_groups: np.ndarray,
               train_groups: np.ndarray, fit_seconds: float, *, worst_min_test_rows: int,
               small_max_train_rows: int) -> FoldScore:
  if not np.all(np.isfinite(pred)):
    raise ValueError(f"{np.sum(~np.isfinite(pred))} non-finite predictions")
  sq = (np.asarray(y) - np.asarray(pred)) ** 2
  per_group = []
  for g in np.unique(test_groups):
    rows = test_groups == g
    if rows.sum() >= worst_min_test_rows:
      per_group.append(rmse(sq[rows]))
  train_counts = np.bincount(train_groups, minlength=int(max(test_groups.max(),
                                                             train_groups.max())) + 1)
  small = train_counts[test_groups] <= small_max_train_rows
  return FoldScore(sq_err=sq, group_rmse=per_group, small_sq_err=sq[small],
                   fit_seconds=fit_seconds)


def paired_rmse_diff_ci(sq_a: np.ndarray, sq_b: np.ndarray, reps: int = 1000, seed: int = 0,
                        level: float = 0.95) -> List[float]:
  """Bootstrap CI of RMSE(a) - RMSE(b) over the same test rows (resampled together, so the
  rows' shared difficulty cancels): a goal's margin next to the noise of the rows it rests on."""
  sq_a, sq_b = np.asarray(sq_a, np.float64), np.asarray(sq_b, np.float64)
  if len(sq_a) != len(sq_b):
    raise ValueError(f"paired rows differ: {len(sq_a)} vs {len(sq_b)}")
  if len(sq_a) == 0:
    return [float("nan"), float("nan")]
  idx = np.random.default_rng(seed).integers(0, len(sq_a), (reps, len(sq_a)))
  diff = np.sqrt(sq_a[idx].mean(axis=1)) - np.sqrt(sq_b[idx].mean(axis=1))
  tail = 100 * (1 - level) / 2
  return [float(np.percentile(diff, tail)), float(np.percentile(diff, 100 - tail))]


def paired_vs(folds: List[FoldScore], base: List[FoldScore]) -> Dict[str, List[float]]:
  """CIs of RMSE(base) - RMSE(folds) overall and on small-group rows (negative: base better)."""
  cat = lambda fs, attr: np.concatenate([getattr(f, attr) for f in fs])
  return {"diff_ci": paired_rmse_diff_ci(cat(base, "sq_err"), cat(folds, "sq_err")),
          "small_diff_ci": paired_rmse_diff_ci(cat(base, "small_sq_err"),
                                               cat(folds, "small_sq_err"))}


def summarise(folds: List[FoldScore]) -> Dict[str, float]:
  """Overall RMSE over all out-of-fold rows (+ fold spread); group RMSE quantiles over every
  (fold, group) pair; worst group = mean over folds of each fold's worst group."""
  all_sq = np.concatenate([f.sq_err for f in folds])
  fold_rmse = [rmse(f.sq_err) for f in folds]
  groups = np.array([r for f in folds for r in f.group_rmse])
  small = np.concatenate([f.small_sq_err for f in folds])
  worst = [max(f.group_rmse) for f in folds if f.group_rmse]
  return {
      "rmse": rmse(all_sq),
      "rmse_fold_sd": float(np.std(fold_rmse)),
      "group_rmse_p50": float(np.median(groups)) if len(groups) else float("nan"),
      "group_rmse_p90": float(np.quantile(groups, 0.9)) if len(groups) else float("nan"),
      "worst_group_rmse": float(np.mean(worst)) if worst else float("nan"),
      "small_group_rmse": rmse(small),
      "small_group_rows": int(len(small)),
      "fit_seconds": float(np.mean([f.fit_seconds for f in folds])),
  }
