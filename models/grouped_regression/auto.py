"""`model.variant: auto`: which candidates train, and how one is kept.

Why: no single family wins everywhere -- trees win where the response has thresholds and
interactions, the network where groups differ in slopes of smooth effects. Each candidate trains
on `train` with early stopping on `eval` (so training length is chosen there too), and the one
with the lowest eval-split RMSE is exported; `test` only judges the winner.

A neural candidate is a (variant, numeric encoding) pair: z-scores alone, or z-scores plus
piecewise-linear bins (when the Transform graph emits them, model.numeric_bins > 1). The same
eval-split rule picks the encoding for an explicitly configured neural variant.

Time bound: auto = 2 multihead fits (one per encoding) + 1 boosted fit; the boosted trunk stops
early on eval and costs less than one multihead fit, so auto's Trainer is <= ~3x multihead's.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

AUTO = "auto"
BOOSTED = "boosted"
NEURAL_FOR_AUTO = ("multihead",)
ENCODINGS = ("zscore", "piecewise")


def encodings(numeric_bins: int) -> Tuple[str, ...]:
  """The numeric encodings a neural candidate tries (piecewise only if the transform emits it)."""
  return ENCODINGS if numeric_bins > 1 else ENCODINGS[:1]


def candidates(variant: str, numeric_bins: int) -> List[str]:
  """Candidate names 'variant/encoding' (neural) or 'boosted' for a configured variant."""
  if variant == BOOSTED:
    return [BOOSTED]
  neural = NEURAL_FOR_AUTO if variant == AUTO else (variant,)
  out = [f"{v}/{e}" for v in neural for e in encodings(numeric_bins)]
  return out + [BOOSTED] if variant == AUTO else out


def split(candidate: str) -> Tuple[str, str]:
  """('multihead', 'zscore') from 'multihead/zscore'; ('boosted', '') for the boosted one."""
  variant, _, encoding = candidate.partition("/")
  return variant, encoding


def choose(eval_rmse: Dict[str, float]) -> str:
  """The candidate with the lowest eval-split RMSE (ties: the first listed)."""
  if not eval_rmse:
    raise ValueError("auto: no candidate trained")
  return min(eval_rmse, key=lambda k: (eval_rmse[k], list(eval_rmse).index(k)))
