"""Peer methods, fitted on exactly the fold data the Keras variants get.

Each takes a FoldSplit (training fold, its inner train/validation split, test rows) and returns
test predictions. Trees see raw numerics + categorical codes; linear models the design matrix
of z-scored numerics and one-hot categoricals (bench/models/prep.py).
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any, Dict, List

import numpy as np

from bench.models.prep import FoldData, design_matrix

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FoldSplit:
  full: FoldData            # the whole training fold
  inner: FoldData           # training fold minus the validation share
  val: FoldData             # early-stopping rows (part of the training fold)
  test: FoldData
  vocab_sizes: List[int]
  num_groups: int
  seed: int


def _tree_matrix(d: FoldData, with_group: bool) -> np.ndarray:
  cols = [d.numeric_raw, d.categorical.astype(np.float64)]
  if with_group:
    cols.append(d.group.astype(np.float64)[:, None])
  return np.concatenate(cols, axis=1)


def _tree_categoricals(s: FoldSplit, with_group: bool) -> List[int]:
  first = s.full.numeric_raw.shape[1]
  n_cat = s.full.categorical.shape[1] + (1 if with_group else 0)
  return list(range(first, first + n_cat))


def lightgbm(s: FoldSplit, p: Dict[str, Any], with_group: bool) -> np.ndarray:
  """LightGBM with early stopping on the validation rows; the group as a categorical or not."""
  import lightgbm as lgb  # pylint: disable=g-import-not-at-top
  cats = _tree_categoricals(s, with_group)
  model = lgb.LGBMRegressor(n_estimators=int(p["max_rounds"]), learning_rate=p["learning_rate"],
                            num_leaves=int(p["num_leaves"]), random_state=s.seed, n_jobs=1,
                            verbose=-1)
  model.fit(_tree_matrix(s.inner, with_group), s.inner.y,
            eval_set=[(_tree_matrix(s.val, with_group), s.val.y)], categorical_feature=cats,
            callbacks=[lgb.early_stopping(int(p["early_stopping"]), verbose=False)])
  return model.predict(_tree_matrix(s.test, with_group))


def gpboost(s: FoldSplit, p: Dict[str, Any]) -> np.ndarray:
  """GPBoost: boosting for the fixed part + a grouped random intercept, early stopping on the
  validation rows with the random effect included.

  The label is z-scored for the fit (and the prediction scaled back): GPBoost's gradient step is
  the residual divided by the fitted error variance, so on a label in raw units (flight delays,
  variance ~2000) a thousand rounds move the trees only ~1/2000 of the way.
  """
  import gpboost as gpb  # pylint: disable=g-import-not-at-top
  mean, std = float(np.mean(s.inner.y)), float(max(np.std(s.inner.y), 1e-12))
  cats = _tree_categoricals(s, with_group=False)
  gp_model = gpb.GPModel(group_data=s.inner.group, likelihood="gaussian")
  gp_model.set_prediction_data(group_data_pred=s.val.group)
  train = gpb.Dataset(_tree_matrix(s.inner, False), (s.inner.y - mean) / std,
                      categorical_feature=cats)
  val = gpb.Dataset(_tree_matrix(s.val, False), (s.val.y - mean) / std, reference=train,
                    categorical_feature=cats)
  params = {"learning_rate": p["learning_rate"], "num_leaves": int(p["num_leaves"]),
            "max_depth": int(p["max_depth"]),
            "min_data_in_leaf": int(p["min_data_in_leaf"]), "verbose": -1, "num_threads": 1,
            "seed": s.seed}
  booster = gpb.train(params, train, num_boost_round=int(p["max_rounds"]), gp_model=gp_model,
                      valid_sets=[val], early_stopping_rounds=int(p["early_stopping"]),
                      use_gp_model_for_validation=True, verbose_eval=False)
  pred = booster.predict(data=_tree_matrix(s.test, False), group_data_pred=s.test.group,
                         predict_var=False, pred_latent=False)
  return mean + std * np.asarray(pred["response_mean"])


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float):
  from sklearn.linear_model import Ridge  # pylint: disable=g-import-not-at-top
  return Ridge(alpha=alpha).fit(x, y)


def unpooled_ridge(s: FoldSplit, alpha: float, min_rows: int) -> np.ndarray:
  """One ridge per group; groups with fewer than min_rows training rows (or unseen) fall back to
  a pooled ridge over the whole training fold."""
  x_tr, x_te = design_matrix(s.full, s.vocab_sizes), design_matrix(s.test, s.vocab_sizes)
  pred = _ridge(x_tr, s.full.y, alpha).predict(x_te)
  for g in np.unique(s.test.group):
    rows = s.full.group == g
    if rows.sum() >= min_rows:
      te = s.test.group == g
      pred[te] = _ridge(x_tr[rows], s.full.y[rows], alpha).predict(x_te[te])
  return pred


def _independent_columns(x: np.ndarray) -> np.ndarray:
  """Mask of a full-rank column subset (rank-revealing QR): rare one-hot levels can make the
  design singular on a fold, which MixedLM cannot solve."""
  from scipy.linalg import qr  # pylint: disable=g-import-not-at-top
  _, r, piv = qr(x, mode="economic", pivoting=True)
  diag = np.abs(np.diag(r))
  rank = int(np.sum(diag > diag[0] * 1e-9))
  keep = np.zeros(x.shape[1], bool)
  keep[piv[:rank]] = True
  return keep


def mixedlm(s: FoldSplit, max_iter: int) -> np.ndarray:
  """statsmodels MixedLM: linear fixed effects + a random intercept per group (REML)."""
  import statsmodels.api as sm  # pylint: disable=g-import-not-at-top
  x_tr = sm.add_constant(design_matrix(s.full, s.vocab_sizes), has_constant="add")
  x_te = sm.add_constant(design_matrix(s.test, s.vocab_sizes), has_constant="add")
  keep = _independent_columns(x_tr)
  mu = float(np.mean(s.full.y))                        # centred: L-BFGS stalled on the intercept
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")                    # convergence chatter; checked below
    res = sm.MixedLM(s.full.y - mu, x_tr[:, keep], groups=s.full.group).fit(
        reml=True, method=["bfgs", "lbfgs"], maxiter=max_iter)
  if not res.converged:
    log.warning("MixedLM did not converge in %d iterations; using its last estimate", max_iter)
  try:
    effects = {k: float(np.asarray(v)[0]) for k, v in res.random_effects.items()}
  except ValueError:                                   # variance estimated at 0 (boundary)
    log.info("MixedLM: group variance estimated as 0; random intercepts are all 0")
    effects = {}
  return mu + x_te[:, keep] @ np.asarray(res.fe_params) + np.array(
      [effects.get(g, 0.0) for g in s.test.group])
