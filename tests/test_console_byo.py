"""`make run`'s entry point on a bring-your-own CSV whose column names hold dots and spaces:
starter config from `make init`'s code path, a quiet console, the full log on disk, and the
pushed model answers on both signatures. One pipeline run serves every assertion."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models.grouped_regression import features as fk
from pipeline import init_config
from pipeline.config import load_config
from pipeline.eval_config import RMSE

COMPONENTS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Grouping",
              "Transform", "Trainer", "Evaluator", "Pusher")


def _csv(path: str, n: int = 700) -> pd.DataFrame:
  rng = np.random.default_rng(0)
  county = rng.choice([f"c{i}" for i in range(7)], n)
  area = rng.uniform(500, 3000, n)
  year = rng.integers(1950, 2010, n)
  y = (10 + 0.0005 * area + 0.01 * (year - 1950) + np.char.lstrip(county, "c").astype(float) * 0.3
       + rng.normal(0, 0.2, n))
  df = pd.DataFrame({"county.name": county, "lot area": area, "year.built": year,
                     "house style": rng.choice(["a b", "c.d", "e"], n), "sale price": y})
  df.to_csv(path, index=False)
  return df


@pytest.fixture(scope="module")
def byo_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("byo")
  csv = str(tmp / "county data.csv")
  df = _csv(csv)
  config = init_config.write(csv, "byo", out=str(tmp / "byo.yaml"))
  sets = [f"dataset.csv_dir={tmp / 'data'}", f"outputs.root={tmp / 'out'}", "model.epochs=10",
          "model.patience=3", "model.batch_size=64",
          # one candidate without bins, as in tests/pipeline_fixtures.FAST (auto: test_pipeline_auto)
          "model.variant=multihead", "model.numeric_bins=0"]
  proc = subprocess.run([sys.executable, "-m", "pipeline.local_runner", "--config", config,
                         "--set", *sets], capture_output=True, text=True, timeout=1500)
  cfg = load_config(config, overrides=dict(s.split("=", 1) for s in sets[:2]))
  return proc, cfg, df


@pytest.mark.slow
def test_console_is_one_line_per_component_and_the_log_has_the_rest(byo_run):
  proc, cfg, _ = byo_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()
  assert len(lines) <= 60, proc.stdout
  for name in COMPONENTS:
    assert any(name in l and "finished" in l for l in lines), (name, proc.stdout)
  assert any("Grouping" in l and "apriori: " in l for l in lines)
  assert any("Trainer" in l and "epochs" in l and "eval RMSE" in l for l in lines)
  assert "RMSE in sale price" in proc.stdout
  assert any(l.startswith("| ") and " c0 " in l for l in lines)   # groups named by category
  for what in ("pushed model: ", "grouping report: ", "report: "):
    assert any(l.startswith(what) for l in lines), (what, proc.stdout)
  assert "Setting to DenseTensor" not in proc.stdout + proc.stderr
  with open(cfg.log_path, encoding="utf-8") as f:
    log = f.read()
  assert "Component Trainer is finished" in log or "Component GroupedTrainer is finished" in log
  assert len(log.splitlines()) > 10 * len(lines)


@pytest.mark.slow
def test_dotted_and_spaced_columns_serve_on_both_signatures(byo_run):
  proc, cfg, df = byo_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  base = cfg.serving_base_dir
  model = tf.saved_model.load(os.path.join(base, sorted(os.listdir(base))[-1]))
  rows = df.head(5)
  raw = model.signatures["serving_raw"]
  inputs = {fk.raw_input_name(c): tf.constant(rows[c].to_numpy()) for c in
            ("county.name", "house style")}
  inputs = {k: tf.strings.as_string(v) if v.dtype != tf.string else v for k, v in inputs.items()}
  inputs.update({fk.raw_input_name(c): tf.constant(rows[c].to_numpy(), tf.float32)
                 for c in ("lot area",)})
  inputs[fk.raw_input_name("year.built")] = tf.constant(rows["year.built"].to_numpy(), tf.int64)
  specs = raw.structured_input_signature[1]
  inputs = {k: tf.cast(v, specs[k].dtype) for k, v in inputs.items()}
  out_raw = raw(**inputs)["prediction"].numpy().ravel()
  examples = []
  for _, r in rows.iterrows():
    ex = tf.train.Example()
    ex.features.feature["county.name"].bytes_list.value.append(r["county.name"].encode())
    ex.features.feature["house style"].bytes_list.value.append(r["house style"].encode())
    ex.features.feature["lot area"].float_list.value.append(r["lot area"])
    ex.features.feature["year.built"].int64_list.value.append(int(r["year.built"]))
    examples.append(ex.SerializeToString())
  out_ex = model.signatures["serving_default"](examples=tf.constant(examples))["prediction"]
  np.testing.assert_allclose(out_raw, out_ex.numpy().ravel(), rtol=1e-5)
  assert np.abs(out_raw - rows["sale price"].to_numpy()).mean() < 1.0  # label scale ~ 10-13


def test_config_errors_print_one_line_without_traceback(tmp_path):
  bad = tmp_path / "bad.yaml"
  text = open("configs/ames.yaml").read()
  assert "rmse_upper_bound: 0.30 " in text
  bad.write_text(text.replace("rmse_upper_bound: 0.30 ", "rmse_upper_bound: lots "))
  proc = subprocess.run([sys.executable, "-m", "pipeline.local_runner", "--config", str(bad)],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr and proc.stdout == ""
  assert proc.stderr.strip().splitlines() == [
      f"config error: {bad}: evaluation.rmse_upper_bound: expected a number (e.g. 0.5, 1e-3), "
      "found 'lots' (str)"]


def test_final_table_with_two_thousand_groups_stays_short():
  from pipeline import eval_results, run_summary
  groups = {g: {"examples": 3.0, "rmse": 0.1 + g / 1e4, "baseline_rmse": None, "train_rows": 9}
            for g in range(2000)}
  failures = [eval_results.Failure(slice=((fk.GROUP_KEY, str(g)),), metric=RMSE, kind="absolute",
                                   value=1.0, bound=0.5) for g in range(40)]
  s = run_summary.RunSummary(
      evaluation_uri="/x/eval/1", blessed=False, pushed=False, pushed_path=None,
      grouping_uri=None, groups=groups, failures=failures,
      overall={"candidate": {"example_count": 6000.0, RMSE: 0.2}})
  lines = "\n".join(run_summary.describe(s, units="RMSE in log(price)")).splitlines()
  assert len(lines) < 35, lines
  assert "RMSE in log(price)" in lines[0]
  assert any("1984 more groups" in l for l in lines)
  assert "| 1999 |" in lines[2]                    # the worst group first
  assert any("35 more failed thresholds" in l for l in lines)
