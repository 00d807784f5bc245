"""Choosing k: silhouette on a bounded sample, a minimum group share, ties toward smaller k.

Rule (documented in the report): among candidates whose smallest group holds at least
`min_group_share` of the fit rows, take the best silhouette; any candidate within
`tie_tolerance` of it counts as a tie and the smallest such k wins (fewer groups, more rows
per head). If no candidate respects the share, the k whose smallest group is largest is chosen
and a note says so. A single configured k is used as is (a note flags a too-small group).
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

DEFAULT_TIE_TOLERANCE = 1e-3


@dataclasses.dataclass
class KCandidate:
  k: int
  inertia: float
  silhouette: Optional[float]    # None when undefined (k == 1 or one label in the sample)
  min_share: float               # smallest group's share of the fit rows
  feasible: bool                 # min_share >= min_group_share

  def __post_init__(self):
    if self.silhouette is not None and np.isnan(self.silhouette):
      self.silhouette = None


def evaluate(k: int, z: np.ndarray, labels: np.ndarray, inertia: float, sil_idx: np.ndarray,
             min_group_share: float) -> KCandidate:
  """Scores one fitted k: silhouette on the rows `sil_idx` and the smallest group's share."""
  from sklearn.metrics import silhouette_score  # pylint: disable=g-import-not-at-top
  shares = np.bincount(labels, minlength=k) / len(labels)
  sub = labels[sil_idx]
  n_labels = len(np.unique(sub))
  sil = (float(silhouette_score(z[sil_idx], sub))
         if k > 1 and 1 < n_labels < len(sil_idx) else None)
  return KCandidate(k=int(k), inertia=float(inertia), silhouette=sil,
                    min_share=float(shares.min()),
                    feasible=bool(shares.min() >= min_group_share))


def choose_k(curve: List[KCandidate], min_group_share: float,
             tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> Tuple[KCandidate, Optional[str]]:
  """The chosen candidate and, when the rule had to compromise, a note saying how."""
  if not curve:
    raise ValueError("no k candidates to choose from")
  if len(curve) == 1:
    c = curve[0]
    note = None
    if not c.feasible:
      note = (f"fixed k={c.k}: the smallest group holds {100 * c.min_share:.2f}% of the fit "
              f"rows, below grouping.min_group_share={min_group_share}")
    return c, note
  pool = [c for c in curve if c.feasible and c.silhouette is not None]
  if pool:
    best = max(c.silhouette for c in pool)
    return min((c for c in pool if c.silhouette >= best - tie_tolerance), key=lambda c: c.k), None
  chosen = max(curve, key=lambda c: (c.min_share, -c.k))
  note = (f"no k in {[c.k for c in curve]} keeps every group at >= {min_group_share} of the "
          f"fit rows; chose k={chosen.k}, whose smallest group is largest "
          f"({100 * chosen.min_share:.2f}%)")
  return chosen, note
