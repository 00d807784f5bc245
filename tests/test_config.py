"""Config loading: every shipped config validates; mistakes name the field."""
import glob
import os

import pytest

from pipeline.config import REPO_ROOT, ConfigError, load_config
from pipeline.from_config import pipeline_args

# absolute, so the list does not depend on the directory pytest runs from
SHIPPED = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "*.yaml")))


def test_configs_are_found():
  """An empty SHIPPED would silently drop every case of the parametrized test below."""
  names = {os.path.basename(p) for p in SHIPPED}
  assert {"ames.yaml", "diamonds.yaml", "flights.yaml", "synthetic.yaml"} <= names, names


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_configs_load_and_map_to_pipeline_args(path):
  cfg = load_config(path)
  args = pipeline_args(cfg)
  assert args["label"] == cfg.dataset.label
  assert args["serving_model_dir"].endswith(cfg.serving.model_name)


@pytest.mark.parametrize("override,message", [
    ({"model.variant": "mystery"}, "model.variant 'mystery'"),
    ({"grouping.mode": "dbscan"}, "grouping.mode 'dbscan'"),
    ({"grouping.k": [9, 3]}, "grouping.k range"),
    ({"grouping.k": 0}, "grouping.k must be >= 1"),
    ({"dataset.label": "Gr_Liv_Area"}, "also listed as a feature"),
    ({"model.epochs_typo": 3}, "unknown field(s) ['epochs_typo']"),
    ({"grouping.mode": "apriori", "grouping.column": None}, "apriori mode needs"),
])
def test_bad_values_are_rejected_with_the_field_named(override, message):
  with pytest.raises(ConfigError) as err:
    load_config("configs/ames.yaml", overrides=override)
  assert message in str(err.value)


def test_k_range_expands():
  cfg = load_config("configs/ames.yaml", overrides={"grouping.k": [3, 6]})
  assert cfg.grouping.k_range == [3, 4, 5, 6]


def test_missing_config_file_is_named():
  with pytest.raises(ConfigError, match="no_such.yaml"):
    load_config("configs/no_such.yaml")
