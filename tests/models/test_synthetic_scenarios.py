"""bench/models/synthetic.py scenarios: the same columns as configs/synthetic.yaml, and each
scenario's defining structure is in the data it writes."""
import numpy as np
import pytest

from bench.models import settings, synthetic

BASE = {**settings.load()["synthetic"], "rows": 3000, "groups": 30}


@pytest.mark.parametrize("scenario", ["linear", "nonlinear", "slopes", "seasonal"])
def test_scenarios_keep_the_config_columns(scenario):
  df, _ = synthetic.generate({**BASE, "scenario": scenario})
  assert list(df.columns) == ["x1", "x2", "x3", "x4", "channel", "group", "y"]
  assert len(df) == 3000 and np.isfinite(df["y"]).all()


def test_nonlinear_has_a_step_and_seasonal_a_yearly_cycle():
  df, _ = synthetic.generate({**BASE, "scenario": "nonlinear"})
  above, below = df[df.x3 > 0.05], df[df.x3 < -0.05]
  near = lambda d: d[(d.x3.abs() < 0.2)]
  assert near(above).y.mean() - near(below).y.mean() > 1.0   # the 1.5 step at x3 = 0
  df, _ = synthetic.generate({**BASE, "scenario": "seasonal"})
  assert df.x4.between(0, 365).all()
  summer = df[(df.x4 > 60) & (df.x4 < 120)].y.mean()
  winter = df[(df.x4 > 240) & (df.x4 < 300)].y.mean()
  assert summer - winter > 1.0                                # sin peaks at day ~91


def test_slopes_differ_more_by_group_than_linear():
  _, linear = synthetic.generate({**BASE, "scenario": "linear"})
  _, slopes = synthetic.generate({**BASE, "scenario": "slopes"})
  assert slopes["slopes"].std(axis=0).mean() > 1.5 * linear["slopes"].std(axis=0).mean()


def test_unknown_scenario_is_named():
  with pytest.raises(ValueError, match="unknown scenario 'weird'"):
    synthetic.generate({**BASE, "scenario": "weird"})
