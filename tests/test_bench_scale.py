"""`make bench-scale` scaled down, so the bench can't rot: the same harness (bench.scale) on two
small synthetic sizes for our pipeline and the smaller one for the stock taxi pipeline, in two invocations
(the second resumes from the first one's scale.json). Checks that every component of both
pipelines' definitions is in the results and in the table; no timing assertion."""
import json
import os
import subprocess
import sys

import pytest

from bench.scale import report

SIZES = (2000, 4000)
# Training kept to a token budget: the harness, not the model, is under test.
TRAIN = ["model.variant=multihead", "model.epochs=1", "model.train_steps=20", "model.patience=1",
         "model.numeric_bins=0"]


def _harness(results, work, *args):
  proc = subprocess.run(
      [sys.executable, "-m", "bench.scale", "--results", str(results), "--work", str(work),
       "--set", *TRAIN, *args], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _component_types(pipeline) -> set:
  """Execution type names MLMD records: the last part of each node's type."""
  return {node.type.split(".")[-1] for node in pipeline.components}


def _ours_components(tmp_path) -> set:
  from bench.scale.__main__ import SCALE_CONFIG, _load_config
  from pipeline.from_config import pipeline_args
  from pipeline.pipeline import create_pipeline
  cfg = _load_config(SCALE_CONFIG, str(tmp_path / "def"), str(tmp_path / "def-data"), {})
  return _component_types(create_pipeline(**pipeline_args(cfg))) | {"Report"}


def _taxi_components(tmp_path) -> set:
  from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as taxi
  return _component_types(taxi._create_pipeline(  # pylint: disable=protected-access
      pipeline_name="t", pipeline_root=str(tmp_path / "t"), data_root=str(tmp_path),
      module_file="taxi_utils_native_keras.py", serving_model_dir=str(tmp_path / "s"),
      metadata_path=str(tmp_path / "t.sqlite"), beam_pipeline_args=[]))


@pytest.mark.slow
def test_scale_bench_writes_every_component_per_cell(tmp_path):
  results, work = tmp_path / "results", tmp_path / "work"
  work.mkdir()
  _harness(results, work, "--sizes", ",".join(map(str, SIZES)), "--pipelines", "ours")
  out = _harness(results, work, "--sizes", str(SIZES[0]), "--pipelines", "ours,taxi")
  # Resumed: our cell came from the first invocation, only taxi ran now.
  assert f"ours/synthetic/{SIZES[0]}: in " in out and "taxi/synthetic" in out

  cells = json.loads((results / "scale.json").read_text())["cells"]
  expected = {"ours": _ours_components(tmp_path), "taxi": _taxi_components(tmp_path)}
  sizes = {"ours": SIZES, "taxi": SIZES[:1]}
  assert sorted(cells) == sorted(f"{p}/synthetic/{n}" for p in expected for n in sizes[p])
  for key, cell in cells.items():
    missing = expected[cell["pipeline"]] - set(cell["components"])
    assert not missing, f"{key}: no measurement for {sorted(missing)}"
    for name, m in cell["components"].items():
      assert m["peak_rss_mb"] > 0, f"{key}: {name} has no RSS sample"
    assert cell["wall_s"] >= sum(m["seconds"] for m in cell["components"].values())

  md = (results / "scale.md").read_text()
  assert (results / "scale.png").stat().st_size > 0
  for pipeline, names in expected.items():
    table = md.split(report.TITLES[pipeline])[1].split("###")[0]
    for name in names:
      row = next((l for l in table.splitlines() if l.startswith(f"| {name} |")), None)
      assert row is not None, f"{pipeline}: {name} not in the table"
      assert row.count(" / ") == len(sizes[pipeline]), row   # a figure for each size
  for n in SIZES:
    assert f"| synthetic | {n:,} |" in md
