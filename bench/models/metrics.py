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
