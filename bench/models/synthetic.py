"""Synthetic grouped regression with known per-group coefficients and Zipf group sizes.

y = (a + a_g) + x . (b + b_g) + 0.5 sin(2 x1) + channel effect + noise: every group has its own
intercept and slopes around shared ones, and most groups are small, which is where pooling
should help. `python -m bench.models.synthetic` writes the CSV configs/synthetic.yaml reads.

`scenario` (bench/models/config.yaml) probes where one model family is weak; the columns stay
those of configs/synthetic.yaml (x1..xF, channel, group, y):
  linear     the formula above (group intercepts and slopes on a mostly linear response)
  nonlinear  thresholds and interactions in the shared effects (a step in x3, x1 > 0.5 switching
             x2's slope on, x3 * x4), group intercepts only: where trees beat an MLP
  slopes     large group-specific slopes on a linear response, small intercepts: where a per-group
             linear head beats trees that must split on the group for every slope
  seasonal   x4 is a day of the year (0..365): a shared yearly cycle whose amplitude differs by
             group, on top of the linear formula
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Dict, Tuple

import numpy as np
import pandas as pd

from bench.models import settings
from pipeline.config import load_config

log = logging.getLogger(__name__)
CHANNELS = ("web", "store", "phone")


def zipf_sizes(rows: int, groups: int, exponent: float) -> np.ndarray:
  """Group sizes proportional to rank^-exponent, at least 1 row each, summing to `rows`."""
  if rows < groups:
    raise ValueError(f"synthetic: rows ({rows}) must be >= groups ({groups})")
  share = np.arange(1, groups + 1, dtype=np.float64) ** -float(exponent)
  sizes = np.maximum(1, np.floor(share / share.sum() * rows)).astype(int)
  sizes[0] += rows - sizes.sum()
  return sizes


def generate(p: Dict[str, Any]) -> Tuple[pd.DataFrame, Dict[str, np.ndarray]]:
  """(frame with x1..xF, channel, group, y; true coefficients per group)."""
  rng = np.random.default_rng(int(p["seed"]))
  rows, groups, nf = int(p["rows"]), int(p["groups"]), int(p["features"])
  sizes = zipf_sizes(rows, groups, float(p["zipf_exponent"]))
  shared_a, shared_b = 1.0, rng.normal(0.0, 1.0, nf)
  a = shared_a + rng.normal(0.0, float(p["intercept_sd"]), groups)
  b = shared_b[None, :] + rng.normal(0.0, float(p["slope_sd"]), (groups, nf))
  g = np.repeat(np.arange(groups), sizes)
  x = rng.normal(0.0, 1.0, (rows, nf))
  channel = rng.integers(0, len(CHANNELS), rows)
  scenario = str(p.get("scenario", "linear"))
  noise = rng.normal(0.0, float(p["noise_sd"]), rows)
  shared = 0.5 * np.sin(2.0 * x[:, 0]) + np.array([0.0, 0.3, -0.3])[channel]
  if scenario == "linear":
    y = a[g] + np.einsum("nf,nf->n", x, b[g]) + shared + noise
  elif scenario == "nonlinear":
    if nf < 4:
      raise ValueError("synthetic: scenario 'nonlinear' needs features >= 4")
    y = (a[g] + 1.5 * (x[:, 2] > 0.0) + 2.0 * (x[:, 0] > 0.5) * x[:, 1]
         + x[:, 2] * x[:, 3] + np.abs(x[:, 3]) + shared + noise)
  elif scenario == "slopes":
    b = shared_b[None, :] + rng.normal(0.0, 2.0 * float(p["slope_sd"]), (groups, nf))
    a = shared_a + rng.normal(0.0, 0.3 * float(p["intercept_sd"]), groups)
    y = a[g] + np.einsum("nf,nf->n", x, b[g]) + shared + noise
  elif scenario == "seasonal":
    day = rng.uniform(0.0, 365.0, rows)
    amplitude = 1.5 + rng.normal(0.0, 0.5, groups)
    x[:, -1] = day
    b[:, -1] = 0.0
    y = (a[g] + np.einsum("nf,nf->n", x, b[g]) + amplitude[g] * np.sin(2 * np.pi * day / 365.0)
         + shared + noise)
  else:
    raise ValueError(f"synthetic: unknown scenario '{scenario}' "
                     "(linear | nonlinear | slopes | seasonal)")
  df = pd.DataFrame({f"x{i + 1}": x[:, i] for i in range(nf)})
  df["channel"] = np.array(CHANNELS)[channel]
  df["group"] = np.array([f"g{i:03d}" for i in range(groups)])[g]
  df["y"] = y
  order = rng.permutation(rows)
  return df.iloc[order].reset_index(drop=True), {"intercept": a, "slopes": b}


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--config", default="configs/synthetic.yaml")
  args = ap.parse_args()
  cfg = load_config(args.config)
  df, _ = generate(settings.load()["synthetic"])
  os.makedirs(cfg.csv_dir, exist_ok=True)
  path = os.path.join(cfg.csv_dir, f"{cfg.name}.csv")
  df.to_csv(path, index=False)
  log.info("wrote %d rows to %s", len(df), path)


if __name__ == "__main__":
  main()
