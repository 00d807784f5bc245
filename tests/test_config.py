"""Config loading: every shipped config validates; mistakes name the field."""
import glob
import os
import re

import pytest

from pipeline.config import (REPO_ROOT, ConfigError, from_dict, grouping_source_columns,
                             load_config)
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


# ---- type checks (pydantic): the message names the file, the field, expected and found ----

def test_float_fields_accept_every_yaml_float_notation(tmp_path):
  text = open("configs/ames.yaml").read()
  assert "rmse_upper_bound: 0.30 " in text
  text = text.replace("rmse_upper_bound: 0.30 ", "rmse_upper_bound: 3e-1 ")
  path = tmp_path / "ames.yaml"
  path.write_text(text)
  import yaml
  assert isinstance(yaml.safe_load(text)["evaluation"]["rmse_upper_bound"], str)  # PyYAML's
  cfg = load_config(str(path))
  assert cfg.evaluation.rmse_upper_bound == pytest.approx(0.3)
  assert isinstance(cfg.evaluation.rmse_upper_bound, float)
  assert load_config("configs/ames.yaml", {"evaluation.rmse_upper_bound": 1}) \
      .evaluation.rmse_upper_bound == 1.0


@pytest.mark.parametrize("override,field,found", [
    ({"model.delta_l2": "abc"}, "model.delta_l2: expected a number", "'abc' (str)"),
    ({"model.epochs": "5"}, "model.epochs: expected an integer", "'5' (str)"),
    ({"model.epochs": 2.5}, "model.epochs: expected an integer", "2.5 (float)"),
    ({"model.in_memory_max_rows": "lots"}, "model.in_memory_max_rows: expected an integer",
     "'lots' (str)"),
    ({"model.head_refit": "yes please"}, "model.head_refit: expected true or false", "(str)"),
    ({"evaluation.rmse_upper_bound": True}, "evaluation.rmse_upper_bound: expected a number",
     "True (bool)"),
    ({"dataset.numeric_features": "Gr_Liv_Area"}, "dataset.numeric_features: expected a list",
     "'Gr_Liv_Area' (str)"),
    ({"grouping.features": "Longitude"}, "grouping.features: expected a list", "(str)"),
    ({"dataset.categorical_features": ["Neighborhood", 1990]},
     "dataset.categorical_features[1]: expected a string", "1990 (int)"),
    ({"grouping.k": "many"}, "grouping.k: expected", "'many' (str)"),
    ({"serving.model_name": 7}, "serving.model_name: expected a string", "7 (int)"),
    ({"model": [1, 2]}, "model: expected a mapping", "(list)"),
])
def test_type_errors_name_the_field_expected_and_found(override, field, found):
  with pytest.raises(ConfigError) as err:
    load_config("configs/ames.yaml", overrides=override)
  msg = str(err.value)
  assert "configs/ames.yaml: " + field in msg and found in msg, msg
  assert "\n" not in msg  # one problem, one line


def test_unknown_section_and_missing_required_field():
  with pytest.raises(ConfigError, match=r"unknown section\(s\) \['modle'\]"):
    load_config("configs/ames.yaml", overrides={"modle.epochs": 3})
  with pytest.raises(ConfigError, match="dataset.label: expected a value"):
    from_dict({"name": "x", "dataset": {"source": "csv:x.csv", "csv_dir": "data/x"}})


@pytest.mark.parametrize("override,message", [
    ({"dataset.numeric_features": ["group_id", "Lot_Area"]},
     "dataset.numeric_features: 'group_id' is a reserved name"),
    ({"grouping.mode": "apriori", "grouping.column": "group_id"},
     "grouping.column: 'group_id' is a reserved name"),
    ({"dataset.numeric_features": ["Lot.Area", "Lot_Area"]},
     "['Lot.Area', 'Lot_Area'] all map to the tensor name 'Lot_Area'"),
    ({"name": "my data"}, "name: expected letters"),
    ({"dataset.label_from": "log_sale_price"}, "equals dataset.label"),
])
def test_names_the_model_cannot_carry_are_refused(override, message):
  with pytest.raises(ConfigError, match=re.escape(message)):
    load_config("configs/ames.yaml", overrides=override)


def test_apriori_mode_needs_neither_kmeans_features_nor_k():
  cfg = load_config("configs/ames.yaml", overrides={
      "grouping.mode": "apriori", "grouping.column": "Neighborhood", "grouping.features": [],
      "grouping.k": [9, 3]})  # an invalid k range is irrelevant in apriori mode
  assert list(grouping_source_columns(cfg)) == ["Neighborhood"]


def test_dotted_and_spaced_columns_are_accepted():
  cfg = load_config("configs/ames.yaml", overrides={
      "dataset.numeric_features": ["lot area", "Year.Built"], "grouping.mode": "apriori",
      "grouping.column": "county.name", "evaluation.extra_slices": []})
  assert cfg.dataset.numeric_features == ["lot area", "Year.Built"]


def test_config_stays_a_dataclass_for_its_users():
  import dataclasses
  cfg = load_config("configs/ames.yaml")
  assert dataclasses.asdict(cfg.model)["epochs"] == cfg.model.epochs == vars(cfg.model)["epochs"]
  with pytest.raises(Exception):  # replace() re-validates
    dataclasses.replace(cfg.model, epochs="many")
  assert "source_path" not in cfg.to_dict() and cfg.to_dict()["name"] == "ames"


def test_make_init_writes_a_config_that_loads(tmp_path):
  """The starter config (`make init`) renders and validates on a small CSV."""
  from pipeline import init_config
  csv = tmp_path / "t.csv"
  csv.write_text("a,b,c\n" + "".join(f"{i},{'xy'[i % 2]},{i * 1.5}\n" for i in range(50)))
  cfg = load_config(init_config.write(str(csv), "t", out=str(tmp_path / "t.yaml")))
  assert cfg.dataset.split_sizes == {"train": 70, "eval": 15, "test": 15}
  assert cfg.evaluation.min_interval_coverage is None
