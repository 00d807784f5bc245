"""Speed cost of TF op determinism (model.deterministic) in the Trainer's run_fn.

One Transform sample (Ames rows, tests/models/transform_sample), then run_fn trained in fresh
processes (op determinism cannot be switched off inside a process), alternating on/off, ROUNDS
times each; writes bench/results/determinism.md with the median run_fn wall time per mode.
Run: make bench-determinism.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROWS, ROUNDS, EPOCHS = 1500, 3, 8
RESULTS = os.path.join(os.path.dirname(__file__), "results", "determinism.md")

CHILD = """
import json, sys, time
from tfx import v1 as tfx
from models.grouped_regression import trainer
from tests.models import transform_sample
sample = transform_sample.build(sys.argv[1], rows=%d)
det = sys.argv[2] == "on"
fn_args = tfx.components.FnArgs(
    train_files=sample.train_files, eval_files=sample.eval_files,
    transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
    serving_model_dir=sys.argv[3], model_run_dir=sys.argv[3] + "_logs",
    custom_config=sample.custom_config(variant="multihead", epochs=%d, patience=%d,
                                       deterministic=det))
t = time.perf_counter(); trainer.run_fn(fn_args)
print("RESULT", json.dumps({"seconds": time.perf_counter() - t}))
""" % (ROWS, EPOCHS, EPOCHS)


def _run(work: str, mode: str, i: int) -> float:
  proc = subprocess.run([sys.executable, "-c", CHILD, os.path.join(work, f"sample_{mode}_{i}"),
                         mode, os.path.join(work, f"model_{mode}_{i}")],
                        capture_output=True, text=True, check=False)
  if proc.returncode != 0 or "RESULT" not in proc.stdout:
    raise RuntimeError(f"run_fn ({mode}, round {i}) failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.split("RESULT", 1)[1])["seconds"]


def main() -> None:
  times = {"on": [], "off": []}
  load_before = os.getloadavg()[0]
  with tempfile.TemporaryDirectory() as work:
    for i in range(ROUNDS):
      for mode in ("off", "on") if i % 2 else ("on", "off"):
        times[mode].append(_run(work, mode, i))
  med = {m: statistics.median(v) for m, v in times.items()}
  lines = ["# Op determinism: run_fn wall time", "",
           f"{ROWS} Ames rows (Transform sample), multihead, {EPOCHS} epochs, "
           f"{ROUNDS} fresh processes per mode, alternating; {os.cpu_count()} cores, load average "
           f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after (shared machine: the "
           "ratio, measured side by side, is the figure to read).", "",
           "| model.deterministic | run_fn seconds (each) | median |", "|---|---|---|"]
  for m in ("off", "on"):
    lines.append(f"| {m == 'on'} | {', '.join(f'{t:.1f}' for t in times[m])} | {med[m]:.1f} |")
  lines += ["", f"ratio on/off: {med['on'] / med['off']:.2f}"]
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
