"""Sharded CSVs for the scale benchmark: synthetic grouped rows, and the taxi CSV replicated.

CsvExampleGen reads every file in its input folder, one Beam source per file, so writing N rows
as several shards lets ExampleGen (and every Beam step after it) read in parallel. Rows are
generated shard by shard, so memory stays at one shard whatever N is.

    python -m bench.scale.generate --rows 1000000 --out data/scale_synthetic
"""
from __future__ import annotations

import argparse
import os
from typing import List

import numpy as np
import pandas as pd

ROWS_PER_SHARD = 250_000
CHANNELS = ("web", "store", "phone")
FEATURES = 4


def shard_sizes(rows: int, per_shard: int = ROWS_PER_SHARD) -> List[int]:
  """`rows` split into near-equal shards of at most `per_shard` rows."""
  if rows <= 0:
    raise ValueError(f"rows must be > 0, got {rows}")
  n = -(-rows // per_shard)
  base, extra = divmod(rows, n)
  return [base + (1 if i < extra else 0) for i in range(n)]


def _clean(out_dir: str, prefix: str) -> None:
  """Removes this generator's own earlier shards (and nothing else) from out_dir."""
  os.makedirs(out_dir, exist_ok=True)
  for name in os.listdir(out_dir):
    if name.startswith(prefix) and name.endswith(".csv"):
      os.remove(os.path.join(out_dir, name))


def synthetic(rows: int, out_dir: str, groups: int = 300, seed: int = 0,
              zipf_exponent: float = 0.8) -> List[str]:
  """Writes `rows` grouped rows as shards `scale-XXXXX.csv`: per-group intercepts and slopes
  around shared ones, a nonlinear term and a channel effect; group g's share ~ rank^-exponent."""
  rng = np.random.default_rng(seed)
  share = np.arange(1, groups + 1, dtype=np.float64) ** -zipf_exponent
  share /= share.sum()
  a = 1.0 + rng.normal(0.0, 1.0, groups)
  b = rng.normal(0.0, 1.0, FEATURES)[None, :] + rng.normal(0.0, 0.6, (groups, FEATURES))
  names = np.array([f"g{i:03d}" for i in range(groups)])
  _clean(out_dir, "scale-")
  paths = []
  for s, n in enumerate(shard_sizes(rows)):
    r = np.random.default_rng([seed, s + 1])
    g = r.choice(groups, size=n, p=share)
    x = r.normal(0.0, 1.0, (n, FEATURES))
    channel = r.integers(0, len(CHANNELS), n)
    y = (a[g] + np.einsum("nf,nf->n", x, b[g]) + 0.5 * np.sin(2.0 * x[:, 0])
         + np.array([0.0, 0.3, -0.3])[channel] + r.normal(0.0, 0.5, n))
    df = pd.DataFrame({f"x{i + 1}": x[:, i] for i in range(FEATURES)})
    df["channel"] = np.array(CHANNELS)[channel]
    df["group"] = names[g]
    df["y"] = y
    path = os.path.join(out_dir, f"scale-{s:05d}.csv")
    df.to_csv(path, index=False, float_format="%.6g")
    paths.append(path)
  return paths


def taxi_source() -> str:
  """The stock chicago-taxi example's CSV (15k rows), as installed with tfx."""
  from tfx.examples import chicago_taxi_pipeline  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(chicago_taxi_pipeline.__file__), "data", "simple",
                      "data.csv")


def taxi(rows: int, out_dir: str) -> List[str]:
  """The taxi CSV replicated (whole copies, then a head) to `rows` rows, as shards `taxi-*.csv`."""
  base = pd.read_csv(taxi_source(), dtype=str, keep_default_na=False)
  _clean(out_dir, "taxi-")
  paths, start = [], 0
  for s, n in enumerate(shard_sizes(rows)):
    idx = np.arange(start, start + n) % len(base)
    start += n
    path = os.path.join(out_dir, f"taxi-{s:05d}.csv")
    base.iloc[idx].to_csv(path, index=False)
    paths.append(path)
  return paths


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--rows", type=int, required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--kind", choices=["synthetic", "taxi"], default="synthetic")
  args = p.parse_args()
  paths = (synthetic if args.kind == "synthetic" else taxi)(args.rows, args.out)
  print(f"wrote {args.rows:,} rows as {len(paths)} shard(s) under {args.out}")


if __name__ == "__main__":
  main()
