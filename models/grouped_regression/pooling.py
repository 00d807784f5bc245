"""Empirical-Bayes refit of the multihead's group deltas: partial pooling in closed form.

SGD with an L2 penalty pools badly at both ends: a group with 5 rows gets 5 gradient steps per
epoch (its delta barely moves from zero, however different the group is), and one fixed
`delta_l2` cannot suit both a data set whose groups differ a lot and one whose groups hardly
differ. After training, with the trunk fixed, each group's head is a linear model on the head
input phi (trunk output + features + 1), so the Gaussian-prior posterior mean of its delta is a
ridge solve toward the shared head:

    delta_g = (A_g + lam * D)^-1 c_g,   A_g = sum phi phi^T,  c_g = sum phi * r

with r the residual of the shared head (standardised label units) and D the per-column variance
of phi (the penalty is on standardised coordinates). The prior variance is the same for every
group but differs by block of phi -- the intercept, the input features (the head's linear skip)
and the trunk outputs -- since a group mostly shifts its level, sometimes its slopes, and the
trunk's many redundant columns would otherwise soak up a small group's few rows. The three
strengths maximise the training rows' marginal likelihood (type-II ML; coordinate search over a
log grid that includes "no delta"). With those strengths the shared head is also re-estimated
by generalised least squares (deltas integrated out, like a mixed model's fixed effects), so a
small group falls back to a head every group informs as much as its rows allow. Whichever of that, the ridge deltas on
the SGD shared head, the SGD deltas or zero deltas does best on the eval split is kept.
The eval SSE of any delta comes from per-group sufficient statistics, so neither split is held
in memory: memory is O(G * p^2) whatever the row count.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from models.grouped_regression.model import GroupedLinearHead

log = logging.getLogger(__name__)

LAMBDA_GRID = tuple(float(v) for v in np.logspace(-2, 5, 22)) + (1e9,)  # rows of prior weight
BLOCKS = ("intercept", "features", "trunk")
SEARCH_ROUNDS = 2
SHIFT_PRIOR_ROWS = 1.0   # prior weight (in rows) on the GLS shift of the shared head
OUTER_BYTES = 64 << 20   # bound on one step's [rows, p, p] float64 outer products (group_stats)


@dataclasses.dataclass
class GroupStats:
  """Per-group sufficient statistics of (phi+1, residual): enough for any ridge delta's SSE."""
  a: np.ndarray   # [G, p, p]  sum of phi phi^T
  c: np.ndarray   # [G, p]     sum of phi * r
  s: np.ndarray   # [G]        sum of r^2

  @property
  def rows(self) -> np.ndarray:
    return self.a[:, -1, -1]

  def sse(self, delta: np.ndarray) -> float:
    """Sum over rows of (r - phi . delta_g)^2."""
    quad = np.einsum("gi,gij,gj->", delta, self.a, delta)
    return float(self.s.sum() - 2.0 * np.einsum("gi,gi->", delta, self.c) + quad)


@dataclasses.dataclass
class RefitResult:
  choice: str                 # "ridge+shared", "ridge", "sgd" or "zero"
  lam: Optional[Dict[str, float]]   # per block, for "ridge" / "ridge+shared"
  eval_rmse_before: float     # standardised label units, on the eval split
  eval_rmse_after: float
  train_rows: int
  eval_rows: int
  # the posterior of each group's delta under the evidence-chosen prior (standardised units),
  # for intervals and the group-effects table (intervals.py, group_effects.py)
  posterior_cov: Optional[np.ndarray] = None   # [G, p, p] sigma^2 (A_g + P)^-1
  second_moment: Optional[np.ndarray] = None   # [p, p] mean phi phi^T over train rows
  shrinkage: Optional[np.ndarray] = None       # [G] intercept: 1 - P (A_g + P)^-1 (0 pooled)
  delta: Optional[np.ndarray] = None           # [G, p] the kept deltas (+ shared shift)


def _head(model: tf.keras.Model) -> Optional[GroupedLinearHead]:
  heads = [l for l in model.layers if isinstance(l, GroupedLinearHead)]
  return heads[0] if heads else None


def _label_scale(model: tf.keras.Model) -> Tuple[float, float]:
  to_label = model.get_layer("to_label")
  return float(to_label.scale), float(to_label.offset)


def group_stats(model: tf.keras.Model, dataset: tf.data.Dataset) -> GroupStats:
  """Streams (features, label) batches once through the trunk; sums per group. The batches
  are re-cut to a size whose per-row outer products fit OUTER_BYTES."""
  head = _head(model)
  phi_model = tf.keras.Model(model.inputs, list(head.input))
  scale, offset = _label_scale(model)
  num_groups = head.num_groups
  w0 = tf.constant(np.append(head.w.numpy(), head.b.numpy()), tf.float64)

  @tf.function(reduce_retracing=True)
  def batch_stats(features, label):
    phi, g = phi_model(features, training=False)
    phi = tf.cast(phi, tf.float64)
    phi = tf.concat([phi, tf.ones_like(phi[:, :1])], axis=1)              # [n, p]
    g = tf.reshape(tf.cast(g, tf.int32), [-1])
    y = (tf.reshape(tf.cast(label, tf.float64), [-1]) - offset) / scale
    r = y - tf.linalg.matvec(phi, w0)
    outer = phi[:, :, None] * phi[:, None, :]
    return (tf.math.unsorted_segment_sum(outer, g, num_groups),
            tf.math.unsorted_segment_sum(phi * r[:, None], g, num_groups),
            tf.math.unsorted_segment_sum(r * r, g, num_groups))

  p = int(w0.shape[0])
  a, c, s = np.zeros((num_groups, p, p)), np.zeros((num_groups, p)), np.zeros(num_groups)
  # rows per step: as many as the outer products' memory bound allows (wide heads: fewer)
  for features, label in dataset.rebatch(max(1, OUTER_BYTES // (8 * p * p))):
    da, dc, ds = batch_stats(features, label)
    a += da.numpy()
    c += dc.numpy()
    s += ds.numpy()
  return GroupStats(a, c, s)


def column_scale(train: GroupStats) -> np.ndarray:
  """[p] variance of each phi column over all training rows (1 for the bias column)."""
  total = train.a.sum(axis=0)
  n = max(total[-1, -1], 1.0)
  mean = total[-1] / n
  var = np.maximum(np.diag(total) / n - mean ** 2, 1e-8)
  var[-1] = 1.0                                   # the bias column: one unit, like a row
  return var


def ridge_deltas(train: GroupStats, penalty_diag: np.ndarray) -> np.ndarray:
  """[G, p] posterior-mean deltas for a diagonal prior precision (a group without rows: 0)."""
  return np.linalg.solve(train.a + np.diag(penalty_diag)[None], train.c[..., None])[..., 0]


def block_index(p: int, trunk_dim: int) -> Dict[str, np.ndarray]:
  """phi = [trunk outputs (trunk_dim), input features, 1]: column indices of each block."""
  cols = np.arange(p)
  return {"trunk": cols[:trunk_dim], "features": cols[trunk_dim:p - 1], "intercept": cols[-1:]}


def gls_shared_and_deltas(train: GroupStats, penalty_diag: np.ndarray
                          ) -> Tuple[np.ndarray, np.ndarray]:
  """(shift of the shared head [p], deltas [G, p]) with the shared head re-estimated too.

  The SGD shared head is the head of an "average group" as the L2 penalty defined it; under the
  Gaussian prior the shared coefficients' best estimate is generalised least squares with the
  deltas integrated out (a mixed model's fixed effects): each group's rows count as
  A_g - A_g (A_g + P)^-1 A_g, so a big group weighs as much as its between-group variance
  allows and a small one as much as its rows. A group with few rows then falls back to that
  shared head instead of the SGD one.
  """
  a_p = train.a + np.diag(penalty_diag)[None]
  solve_a = np.linalg.solve(a_p, train.a)                     # (A_g + P)^-1 A_g
  solve_c = np.linalg.solve(a_p, train.c[..., None])[..., 0]  # (A_g + P)^-1 c_g
  lhs = (train.a - np.einsum("gij,gjk->gik", train.a, solve_a)).sum(axis=0)
  rhs = (train.c - np.einsum("gij,gj->gi", train.a, solve_c)).sum(axis=0)
  # Where the deltas are nearly free (a weak prior on many collinear columns) the shared head is
  # barely identified; a prior worth SHIFT_PRIOR_ROWS rows keeps it from running off there.
  lhs = lhs + SHIFT_PRIOR_ROWS * np.diag(column_scale(train))
  shift = np.linalg.solve(lhs, rhs)
  delta = solve_c - np.einsum("gij,j->gi", solve_a, shift)
  return shift, delta


def log_evidence(train: GroupStats, penalty_diag: np.ndarray) -> Tuple[float, np.ndarray]:
  """Profiled log marginal likelihood of the training residuals under delta_g ~ N(0, sigma^2 P^-1)
  (P = diag(penalty)), and the posterior-mean deltas. Type-II maximum likelihood picks P: it
  weighs every group by its rows, where an eval split holds too few small-group rows to tell."""
  a_p = train.a + np.diag(penalty_diag)[None]
  delta = np.linalg.solve(a_p, train.c[..., None])[..., 0]
  n = float(train.rows.sum())
  resid = float(train.s.sum() - np.einsum("gi,gi->", delta, train.c))
  sigma2 = max(resid / max(n, 1.0), 1e-12)
  used = train.rows > 0
  _, logdet_ap = np.linalg.slogdet(a_p[used])
  logdet_p = float(np.log(penalty_diag).sum())
  value = -0.5 * (n * np.log(sigma2) + float(logdet_ap.sum()) - used.sum() * logdet_p + n)
  return value, delta


def penalty_diagonal(lam: Dict[str, float], blocks: Dict[str, np.ndarray],
                     scale: np.ndarray) -> np.ndarray:
  """[p] prior precision: each block's strength times its columns' variance."""
  diag = np.empty_like(scale)
  for k, idx in blocks.items():
    diag[idx] = lam[k] * scale[idx]
  return diag


def search_strengths(train: GroupStats, trunk_dim: int) -> Tuple[Dict[str, float], np.ndarray]:
  """Coordinate search of per-block prior weights maximising the training evidence."""
  scale = column_scale(train)
  blocks = {k: v for k, v in block_index(train.c.shape[1], trunk_dim).items() if v.size}

  def evaluate(lam: Dict[str, float]):
    return log_evidence(train, penalty_diagonal(lam, blocks, scale))

  best_lam, best_delta, best_value = None, None, -np.inf
  for v in LAMBDA_GRID:  # the best single strength for every block, then block by block
    lam = {k: v for k in blocks}
    value, delta = evaluate(lam)
    if value > best_value:
      best_lam, best_delta, best_value = lam, delta, value
  for _ in range(SEARCH_ROUNDS):
    for k in blocks:
      for v in LAMBDA_GRID:
        lam = {**best_lam, k: v}
        value, delta = evaluate(lam)
        if value > best_value:
          best_lam, best_delta, best_value = lam, delta, value
  return best_lam, best_delta


def refit_group_heads(model: tf.keras.Model, train_ds: tf.data.Dataset,
                      eval_ds: tf.data.Dataset) -> Optional[RefitResult]:
  """Replaces the multihead's deltas by the eval-chosen ridge solution (None for other variants).

  `train_ds` must be one pass over the training rows (not repeated); the shared head and trunk
  stay as trained.
  """
  head = _head(model)
  if head is None:
    return None
  train, held_out = group_stats(model, train_ds), group_stats(model, eval_ds)
  eval_rows = int(round(held_out.rows.sum()))
  trunk_dim = int(model.get_layer("head_input").input[0].shape[-1])
  sgd = np.concatenate([head.dw.numpy(), head.db.numpy()[:, None]], axis=1).astype(np.float64)
  lam_ridge, ridge = search_strengths(train, trunk_dim)
  blocks = {k: v for k, v in block_index(train.c.shape[1], trunk_dim).items() if v.size}
  shift, gls_delta = gls_shared_and_deltas(
      train, penalty_diagonal(lam_ridge, blocks, column_scale(train)))
  zero = np.zeros_like(sgd)
  # (shared-head shift, deltas); a group's total change is shift + its delta
  candidates = {"ridge+shared": (lam_ridge, shift, gls_delta),
                "ridge": (lam_ridge, zero[0], ridge), "sgd": (None, zero[0], sgd),
                "zero": (None, zero[0], zero)}
  sse = {k: held_out.sse(d + sh[None, :]) for k, (_, sh, d) in candidates.items()}
  best = min(sse, key=sse.get)
  lam, shift, delta = candidates[best]
  head.w.assign((head.w.numpy() + shift[:-1]).astype(np.float32))
  head.b.assign(np.float32(head.b.numpy() + shift[-1]))
  head.dw.assign(delta[:, :-1].astype(np.float32))
  head.db.assign(delta[:, -1].astype(np.float32))
  rmse = lambda v: float(np.sqrt(max(v, 0.0) / max(eval_rows, 1)))
  total = delta + shift[None, :]
  n_train = max(float(train.rows.sum()), 1.0)
  sigma2 = max(train.sse(total) / n_train, 1e-12)
  pen = penalty_diagonal(lam_ridge, blocks, column_scale(train))
  inv = np.linalg.inv(train.a + np.diag(pen)[None])
  result = RefitResult(best, lam, rmse(sse["sgd"]), rmse(sse[best]),
                       int(round(train.rows.sum())), eval_rows,
                       posterior_cov=sigma2 * inv, second_moment=train.a.sum(axis=0) / n_train,
                       shrinkage=1.0 - pen[-1] * inv[:, -1, -1], delta=total)
  log.info("group heads refit: %s %s (eval RMSE %.4f -> %.4f, standardised label units; "
           "%d train / %d eval rows)", best, lam or "", result.eval_rmse_before,
           result.eval_rmse_after, result.train_rows, result.eval_rows)
  return result
