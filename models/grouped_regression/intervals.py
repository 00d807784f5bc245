"""Per-group prediction intervals: Gaussian variance from per-group statistics, then a
split-conformal width correction on the eval split.

Any variant (and any model outside Keras, e.g. a boosted one) can use these functions; they take
plain NumPy per-group statistics, not a model:

  resid_var = shrunk_residual_variance(sse_g, rows_g)          # [G], label units^2
  head_var  = head_variance(posterior_cov_g, second_moment)    # [G], 0 for a model without heads
  sd        = np.sqrt(resid_var + head_var)                    # Gaussian predictive sd per group
  scale     = conformal_scales(abs_err_eval / sd[g_eval], band_of(rows_g)[g_eval], level)
  table     = IntervalTable.build(sd, scale, rows_g, level)    # table.sd[g]: what serving uses

Why each step:
- Residual variance per group where the data support it: a group's own residual variance is
  shrunk toward the pooled one with a prior worth PRIOR_ROWS rows (a scaled-inverse-chi^2
  prior), so a 3-row group gets about the pooled variance and a 3000-row group its own.
- The group head's posterior uncertainty (pooling.py: sigma^2 (A_g + P)^-1, large for a tiny
  group) is averaged over the training rows' head inputs: tr(Cov_g M), M = mean phi phi^T.
- Training residuals under-state the error on new rows and real residuals are rarely Gaussian,
  so the width is then scaled per group-size band to hit the nominal coverage on the eval split
  (split-conformal: the ceil((n+1) level)/n quantile of |error| / sd). `test` is never seen.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import numpy as np
from scipy import stats

PRIOR_ROWS = 10.0                 # prior weight (rows) of the pooled residual variance
BAND_EDGES = (10, 100)            # group-size bands by train rows: <10, 10-99, >=100
MIN_BAND_ROWS = 50                # eval rows a band needs for its own conformal scale


def shrunk_residual_variance(sse: np.ndarray, rows: np.ndarray,
                             prior_rows: float = PRIOR_ROWS) -> np.ndarray:
  """[G] (sse_g + k s2) / (n_g + k), s2 the pooled residual variance."""
  sse, rows = np.asarray(sse, np.float64), np.asarray(rows, np.float64)
  pooled = float(sse.sum() / max(rows.sum(), 1.0))
  return (sse + prior_rows * pooled) / (rows + prior_rows)


def posterior_cov(a: np.ndarray, penalty_diag: np.ndarray, sigma2: float) -> np.ndarray:
  """[G, p, p] posterior covariance of each group's delta: sigma^2 (A_g + P)^-1."""
  return sigma2 * np.linalg.inv(a + np.diag(penalty_diag)[None])


def head_variance(cov: np.ndarray, second_moment: np.ndarray) -> np.ndarray:
  """[G] mean over rows of phi^T Cov_g phi = tr(Cov_g M), M = E[phi phi^T]."""
  return np.maximum(np.einsum("gij,ji->g", cov, second_moment), 0.0)


def band_of(rows: np.ndarray, edges: Sequence[int] = BAND_EDGES) -> np.ndarray:
  """[G] group-size band index by train rows."""
  return np.searchsorted(np.asarray(edges), np.asarray(rows), side="right")


def conformal_quantile(scores: np.ndarray, level: float) -> float:
  """Split-conformal quantile: the ceil((n+1) level)-th smallest score."""
  s = np.sort(np.asarray(scores, np.float64))
  k = int(np.ceil((len(s) + 1) * level)) - 1
  return float(s[min(max(k, 0), len(s) - 1)])


def conformal_scales(z_abs: np.ndarray, band: np.ndarray, level: float,
                     num_bands: int = len(BAND_EDGES) + 1,
                     min_rows: int = MIN_BAND_ROWS) -> np.ndarray:
  """[num_bands] width multipliers: |err|/sd's conformal quantile over the Gaussian quantile.

  A band with fewer than `min_rows` eval rows takes the all-rows multiplier.
  """
  zq = stats.norm.ppf(0.5 + level / 2.0)
  if len(z_abs) == 0:
    return np.ones(num_bands)
  overall = conformal_quantile(z_abs, level) / zq
  out = np.full(num_bands, overall)
  for b in range(num_bands):
    sel = band == b
    if sel.sum() >= min_rows:
      out[b] = conformal_quantile(z_abs[sel], level) / zq
  return out


@dataclasses.dataclass
class IntervalTable:
  """What serving needs: the calibrated predictive sd of each group, and the level."""
  level: float
  sd: np.ndarray                  # [G] calibrated predictive sd (label units)
  gaussian_sd: np.ndarray         # [G] before calibration
  band_scale: List[float]         # per group-size band
  band_edges: List[int]

  @property
  def z(self) -> float:
    return float(stats.norm.ppf(0.5 + self.level / 2.0))

  @classmethod
  def build(cls, gaussian_sd: np.ndarray, scales: np.ndarray, rows: np.ndarray,
            level: float) -> "IntervalTable":
    band = band_of(rows)
    return cls(level, gaussian_sd * scales[band], gaussian_sd, [float(s) for s in scales],
               list(BAND_EDGES))

  def to_json(self) -> Dict:
    return {"level": self.level, "z": self.z, "sd": self.sd.tolist(),
            "gaussian_sd": self.gaussian_sd.tolist(), "band_scale": self.band_scale,
            "band_edges": self.band_edges}


def calibrate(gaussian_sd: np.ndarray, rows: np.ndarray, eval_err: np.ndarray,
              eval_group: np.ndarray, level: float) -> IntervalTable:
  """Gaussian sd per group + eval-split errors -> calibrated IntervalTable."""
  gaussian_sd = np.maximum(np.asarray(gaussian_sd, np.float64), 1e-12)
  eval_group = np.asarray(eval_group, np.int64)
  z_abs = np.abs(np.asarray(eval_err, np.float64)) / gaussian_sd[eval_group]
  scales = conformal_scales(z_abs, band_of(rows)[eval_group], level)
  return IntervalTable.build(gaussian_sd, scales, rows, level)


def back_transform(pred, lower, upper, sd, transform: str):
  """Original-unit (prediction, lower, upper) for a label fitted as `transform`.

  log: quantiles map through exp, so the interval is [exp(lower), exp(upper)] and the point
  prediction is the median exp(mu) (the mean would be exp(mu + sd^2/2)); `sd` is unused then.
  """
  del sd
  if transform == "log":
    return np.exp(pred), np.exp(lower), np.exp(upper)
  return pred, lower, upper
