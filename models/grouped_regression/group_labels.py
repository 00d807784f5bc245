"""Human-readable group labels and fallback flags from the fitted grouping (read-only use of
components/grouping): the a-priori category itself, or for K-Means the centroid's coordinates
in raw units ("k3: Longitude=-93.6, Latitude=42.03")."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

FALLBACK_LABEL = "(fallback: unseen, rare or missing)"
MAX_COORDS = 3     # centroid coordinates shown in a K-Means label


def labels_and_fallback(grouping) -> Tuple[List[str], np.ndarray]:
  """([G] labels, [G] bool is-fallback) for a components.grouping Grouping."""
  g_count = int(grouping.num_groups)
  fallback = np.zeros(g_count, bool)
  if grouping.mode == "apriori":
    labels = [str(v) for v in grouping.vocabulary][:g_count]
    labels += [FALLBACK_LABEL] * (g_count - len(labels))
    if grouping.fallback_group is not None and 0 <= grouping.fallback_group < g_count:
      fallback[grouping.fallback_group] = True
      labels[grouping.fallback_group] = FALLBACK_LABEL
    return labels, fallback
  if grouping.centroids is None:
    return [f"k{g}" for g in range(g_count)], fallback
  raw = (np.asarray(grouping.centroids) * np.asarray(grouping.scale)[None]
         + np.asarray(grouping.mean)[None])
  cols = list(grouping.columns)
  labels = []
  for g in range(g_count):
    coords = ", ".join(f"{c}={raw[g, j]:.4g}" for j, c in enumerate(cols[:MAX_COORDS]))
    labels.append(f"k{g}: {coords}" + (", ..." if len(cols) > MAX_COORDS else ""))
  return labels, fallback
