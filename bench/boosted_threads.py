"""Threads for the boosted trunk: YDF training time with one thread vs every CPU, by rows.

Why: YDF's default uses every CPU, whatever the data size. On small training sets the threads'
hand-offs cost more than they save, so boosted.training_threads gives one thread per
boosted.ROWS_PER_THREAD rows. This bench is where that constant comes from: the trunk the
Trainer builds (boosted.build_trunk, eval-split early stopping), on synthetic regression data
with 14 numeric and 2 categorical features, fitted with 1 thread and with every CPU, alternating,
ROUNDS times per cell; it reports the median training time, the ratio, and each fit's validation
RMSE (YDF breaks split ties one way with one thread and another with several -- 2 and 4 threads
grow the same trees -- so the two models differ a little; neither is the better one).
Writes bench/results/boosted_threads.md. Run: make bench-boosted-threads.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Dict, List, Tuple

import numpy as np

from models.grouped_regression import boosted

ROWS = (2_000, 10_000, 20_000, 30_000, 40_000, 80_000)
ROUNDS = 3
NUMERIC, CATEGORICAL = 14, 2
RESULTS = os.path.join(os.path.dirname(__file__), "results", "boosted_threads.md")


def synthetic(rows: int, seed: int) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """Features keyed like the trunk's inputs (numeric floats, categorical int ids) and a label
  with thresholds and an interaction, the kind of response trees are in `auto` for."""
  rng = np.random.default_rng(seed)
  x = {f"n{i}": rng.normal(size=rows).astype(np.float32) for i in range(NUMERIC)}
  x.update({f"c{i}": rng.integers(0, 12, size=rows) for i in range(CATEGORICAL)})
  y = (np.where(x["n0"] > 0.3, 1.0, -0.5) * x["n1"] + np.sin(2 * x["n2"]) + 0.3 * x["c0"] % 3
       + rng.normal(scale=0.3, size=rows))
  return x, y.astype(np.float32)


def fit_seconds(rows: int, threads: int) -> Tuple[float, float, int]:
  """(training seconds, validation RMSE, trees) of one trunk fit with `threads` threads."""
  x, y = synthetic(rows, seed=0)
  vx, vy = synthetic(max(rows // 5, 500), seed=1)
  learner = boosted.build_trunk([f"c{i}" for i in range(CATEGORICAL)], seed=7, with_group=False,
                                num_threads=threads)
  t = time.perf_counter()
  model = learner.train({**x, boosted.LABEL_COLUMN: y}, valid={**vx, boosted.LABEL_COLUMN: vy},
                        verbose=0)
  seconds = time.perf_counter() - t
  rmse = float(np.sqrt(np.mean((model.predict(vx).reshape(-1) - vy) ** 2)))
  return seconds, rmse, int(model.num_trees())


def table(cells: List[Dict]) -> str:
  cpus = os.cpu_count() or 1
  lines = [
      "# Boosted trunk: training threads", "",
      "YDF gradient-boosted trunk as the Trainer builds it (boosted.build_trunk: "
      f"{boosted.NUM_TREES} trees at most, depth {boosted.MAX_DEPTH}, early stopping on a "
      f"validation set of a fifth of the rows), synthetic data with {NUMERIC} numeric and "
      f"{CATEGORICAL} categorical features. Median of {ROUNDS} fits per cell, 1 thread and "
      f"{cpus} threads alternating in one process; {cpus} cores. `fit` is YDF's train() on "
      "NumPy arrays. Rule in use: boosted.training_threads, one thread per "
      f"{boosted.ROWS_PER_THREAD:,} rows.", "",
      f"| train rows | fit, 1 thread (s) | fit, {cpus} threads (s) | {cpus} threads / 1 | "
      "trees (1 / all) | validation RMSE (1 / all) | threads the rule picks |",
      "|---:|---:|---:|---:|---:|---:|---:|"]
  for c in cells:
    lines.append(f"| {c['rows']:,} | {c['one']:.2f} | {c['all']:.2f} | "
                 f"{c['all'] / c['one']:.2f}x | {c['trees_one']} / {c['trees_all']} | "
                 f"{c['rmse_one']:.4f} / {c['rmse_all']:.4f} | "
                 f"{boosted.training_threads(c['rows'])} |")
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS))
  args = parser.parse_args()
  cpus = os.cpu_count() or 1
  cells = []
  for rows in args.rows:
    times = {1: [], cpus: []}
    rmse, trees = {}, {}
    for r in range(ROUNDS):
      for threads in ((1, cpus) if r % 2 == 0 else (cpus, 1)):
        seconds, rmse[threads], trees[threads] = fit_seconds(rows, threads)
        times[threads].append(seconds)
    cell = {"rows": rows, "one": statistics.median(times[1]),
            "all": statistics.median(times[cpus]), "trees_one": trees[1],
            "trees_all": trees[cpus], "rmse_one": rmse[1], "rmse_all": rmse[cpus]}
    print(f"{rows:>7,} rows: 1 thread {cell['one']:.2f} s, {cpus} threads {cell['all']:.2f} s",
          flush=True)
    cells.append(cell)
  text = table(cells)
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    f.write(text)
  print(text)


if __name__ == "__main__":
  main()
