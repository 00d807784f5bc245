"""One config per dataset: everything a run needs, loaded from YAML and validated up front.

The pipeline code takes no dataset knowledge of its own: a new CSV needs only a new YAML file.
Paths in the YAML are relative to the repository root unless absolute.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GROUPING_MODES = ("kmeans", "apriori")
GROUPING_CATEGORICAL = ("error", "onehot", "exclude")
MODEL_VARIANTS = ("multihead", "embedding", "attention", "global")
LABEL_TRANSFORMS = ("log", "none")


class ConfigError(ValueError):
  """A config file is missing a field or holds a value the pipeline cannot use."""


@dataclasses.dataclass
class DatasetConfig:
  source: str
  csv_dir: str
  label: str
  numeric_features: List[str]
  categorical_features: List[str] = dataclasses.field(default_factory=list)
  label_from: Optional[str] = None
  label_transform: str = "none"
  schema: Optional[str] = None
  train_buckets: int = 4
  eval_buckets: int = 1
  sample_rows: int = 0              # 0: all rows; else a deterministic sample at `make data`


@dataclasses.dataclass
class GroupingConfig:
  mode: str = "kmeans"
  features: List[str] = dataclasses.field(default_factory=list)
  k: Union[int, List[int]] = 8
  min_group_share: float = 0.02
  sample_size: int = 200_000
  seed: int = 42
  column: Optional[str] = None
  min_count: int = 20
  silhouette_sample: int = 5_000
  categorical: str = "error"        # K-Means on a string feature: error | onehot | exclude
  n_init: int = 4                   # K-Means restarts per k
  tie_tolerance: float = 0.001      # silhouettes this close count as a tie: smaller k wins

  @property
  def k_range(self) -> List[int]:
    """The candidate k values: one fixed k, or every k in [min, max]."""
    if isinstance(self.k, int):
      return [self.k]
    lo, hi = self.k
    return list(range(int(lo), int(hi) + 1))


@dataclasses.dataclass
class ModelConfig:
  variant: str = "multihead"
  trunk_units: List[int] = dataclasses.field(default_factory=lambda: [64, 32])
  head_units: int = 16
  embedding_dim: int = 8
  attention_heads: int = 2
  delta_l2: float = 1e-3
  head_refit: bool = True
  numeric_bins: int = 0          # > 1: piecewise-linear encoding of each numeric (piecewise.py)
  learning_rate: float = 3e-3
  batch_size: int = 64
  epochs: int = 40
  patience: int = 6
  interval: float = 0.9          # prediction-interval level of the served lower/upper (intervals.py)
  train_steps: int = 0
  seed: int = 7


@dataclasses.dataclass
class EvaluationConfig:
  rmse_upper_bound: float = 1e9
  overall_rmse_tolerance: float = 0.05
  group_rmse_tolerance: float = 0.15
  min_group_examples: int = 15
  extra_slices: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ServingConfig:
  model_name: str = "model"


@dataclasses.dataclass
class OutputsConfig:
  root: str = "outputs/default"


@dataclasses.dataclass
class BeamConfig:
  """beam_pipeline_args for every Beam-using component (ExampleGen ... Evaluator, Grouping).

  Runner choice and parallelism live here, never in code: docs/orchestration.md lists the
  DirectRunner modes (with measurements) and the Flink/Spark/Dataflow arguments.
  """
  args: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class KubeflowConfig:
  """Defaults baked into the Kubeflow Pipelines V2 JSON (pipeline/kubeflow_runner.py).

  Each path is only a default: data_root and push_destination are runtime parameters, and
  the pipeline root is the submit-time `pipeline_root`. Empty means: data_root = the dataset's
  csv_dir inside the image (the Dockerfile bakes it in); serving_model_dir = no default (the
  run must pass push_destination); pipeline_root = the KFP backend's default root.
  """
  image: str = "grouped-regression:latest"
  pipeline_root: str = ""
  data_root: str = ""
  serving_model_dir: str = ""


@dataclasses.dataclass
class AirflowConfig:
  """DAG settings for pipeline/airflow_dag.py (schedule: a cron/preset string, or null)."""
  schedule: Optional[str] = None
  start_date: str = "2024-01-01"
  retries: int = 0


@dataclasses.dataclass
class PipelineConfig:
  """The whole run: dataset, grouping, model, gates, serving and where outputs go."""
  name: str
  dataset: DatasetConfig
  grouping: GroupingConfig
  model: ModelConfig
  evaluation: EvaluationConfig
  serving: ServingConfig
  outputs: OutputsConfig
  beam: BeamConfig
  kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)
  airflow: AirflowConfig = dataclasses.field(default_factory=AirflowConfig)
  source_path: Optional[str] = None

  # Derived locations. All below outputs.root so one directory holds a run's state.
  @property
  def output_root(self) -> str:
    return resolve_path(self.outputs.root)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_root, "pipeline")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_root, "metadata.sqlite")

  @property
  def serving_base_dir(self) -> str:
    """TF Serving's model base path: <root>/serving_model/<model_name>/<version>/."""
    return os.path.join(self.output_root, "serving_model", self.serving.model_name)

  @property
  def report_dir(self) -> str:
    return os.path.join(self.output_root, "reports")

  @property
  def csv_dir(self) -> str:
    return resolve_path(self.dataset.csv_dir)

  @property
  def schema_path(self) -> Optional[str]:
    return resolve_path(self.dataset.schema) if self.dataset.schema else None

  @property
  def feature_columns(self) -> List[str]:
    return list(self.dataset.numeric_features) + list(self.dataset.categorical_features)

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d.pop("source_path", None)
    return d


def resolve_path(path: str) -> str:
  return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


_SECTIONS = {
    "dataset": DatasetConfig, "grouping": GroupingConfig, "model": ModelConfig,
    "evaluation": EvaluationConfig, "serving": ServingConfig, "outputs": OutputsConfig,
    "beam": BeamConfig, "kubeflow": KubeflowConfig, "airflow": AirflowConfig,
}


def _build(cls, raw: Any, where: str):
  if raw is None:
    raw = {}
  if not isinstance(raw, dict):
    raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(raw) - known)
  if unknown:
    raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
  try:
    return cls(**raw)
  except TypeError as e:  # a required field is missing
    raise ConfigError(f"{where}: {e}") from None


def from_dict(raw: Dict[str, Any], source_path: Optional[str] = None) -> PipelineConfig:
  """Builds and validates a config from a plain dict (the parsed YAML)."""
  where = source_path or "<config>"
  if "name" not in raw:
    raise ConfigError(f"{where}: missing field 'name'")
  unknown = sorted(set(raw) - set(_SECTIONS) - {"name"})
  if unknown:
    raise ConfigError(f"{where}: unknown section(s) {unknown}")
  sections = {k: _build(cls, raw.get(k), f"{where}: {k}") for k, cls in _SECTIONS.items()}
  cfg = PipelineConfig(name=str(raw["name"]), source_path=source_path, **sections)
  validate(cfg)
  return cfg


def load_config(path: str, overrides: Optional[Dict[str, Any]] = None) -> PipelineConfig:
  """Reads a YAML config; `overrides` maps dotted keys ('model.epochs') to values."""
  path = resolve_path(path)
  if not os.path.exists(path):
    raise ConfigError(f"config file not found: {path}")
  with open(path) as f:
    raw = yaml.safe_load(f) or {}
  for dotted, value in (overrides or {}).items():
    set_dotted(raw, dotted, value)
  return from_dict(raw, source_path=path)


def set_dotted(raw: Dict[str, Any], dotted: str, value: Any) -> None:
  node = raw
  *parents, leaf = dotted.split(".")
  for key in parents:
    node = node.setdefault(key, {})
  node[leaf] = value


def _require(cond: bool, where: str, message: str) -> None:
  if not cond:
    raise ConfigError(f"{where}: {message}")


def validate(cfg: PipelineConfig) -> None:
  """Rejects configs that would fail late (in a component) with an error that names the field."""
  w = cfg.source_path or "<config>"
  d, g, m = cfg.dataset, cfg.grouping, cfg.model
  _require(bool(d.numeric_features or d.categorical_features), w,
           "dataset: at least one of numeric_features / categorical_features is needed")
  dupes = {c for c in cfg.feature_columns if cfg.feature_columns.count(c) > 1}
  _require(not dupes, w, f"dataset: columns listed twice: {sorted(dupes)}")
  _require(d.label not in cfg.feature_columns, w,
           f"dataset.label '{d.label}' is also listed as a feature")
  _require(d.label_transform in LABEL_TRANSFORMS, w,
           f"dataset.label_transform '{d.label_transform}' not in {LABEL_TRANSFORMS}")
  _require(d.train_buckets > 0 and d.eval_buckets > 0, w, "dataset: split buckets must be > 0")
  _require(g.mode in GROUPING_MODES, w, f"grouping.mode '{g.mode}' not in {GROUPING_MODES}")
  if g.mode == "kmeans":
    _require(bool(g.features), w, "grouping.features: K-Means needs at least one feature")
    if not isinstance(g.k, int):
      _require(isinstance(g.k, list) and len(g.k) == 2 and g.k[0] <= g.k[1], w,
               f"grouping.k range must be [min, max] with min <= max (got {g.k})")
      _require(g.k[0] >= 2, w, "grouping.k range: automatic selection needs min >= 2")
    _require(min(g.k_range) >= 1, w, f"grouping.k must be >= 1 (got {g.k})")
  else:
    _require(bool(g.column), w, "grouping.column: apriori mode needs a categorical column")
  _require(0.0 <= g.min_group_share < 1.0, w, "grouping.min_group_share must be in [0, 1)")
  _require(g.sample_size > 0, w, "grouping.sample_size must be > 0")
  _require(g.categorical in GROUPING_CATEGORICAL, w,
           f"grouping.categorical '{g.categorical}' not in {GROUPING_CATEGORICAL}")
  _require(g.n_init >= 1 and g.silhouette_sample >= 2 and g.min_count >= 1
           and g.tie_tolerance >= 0, w, "grouping: n_init and min_count must be >= 1, "
           "silhouette_sample >= 2, tie_tolerance >= 0")
  _require(m.variant in MODEL_VARIANTS, w, f"model.variant '{m.variant}' not in {MODEL_VARIANTS}")
  _require(bool(m.trunk_units) and all(u > 0 for u in m.trunk_units), w,
           "model.trunk_units must be a non-empty list of positive ints")
  _require(m.batch_size > 0 and m.epochs > 0, w, "model: batch_size and epochs must be > 0")
  _require(0.0 < m.interval < 1.0, w, f"model.interval {m.interval} must be in (0, 1)")
  _require(m.numeric_bins == 0 or 2 <= m.numeric_bins <= 64, w,
           f"model.numeric_bins must be 0 (off) or 2..64, got {m.numeric_bins}")
  e = cfg.evaluation
  _require(e.overall_rmse_tolerance >= 0 and e.group_rmse_tolerance >= 0, w,
           "evaluation: tolerances must be >= 0")
  _require(e.min_group_examples >= 0, w, "evaluation.min_group_examples must be >= 0")
  _require(e.rmse_upper_bound > 0, w, "evaluation.rmse_upper_bound must be > 0")
  slice_columns = set(cfg.feature_columns) | set(grouping_source_columns(cfg))
  unknown = [c for c in e.extra_slices if c not in slice_columns]
  _require(not unknown, w, f"evaluation.extra_slices: column(s) {unknown} are not dataset "
           f"columns; choose from {sorted(slice_columns)}")
  bad_args = [a for a in cfg.beam.args if not (isinstance(a, str) and a.startswith("--"))]
  _require(not bad_args, w,
           f"beam.args: each entry must be a '--flag[=value]' string, got {bad_args}")
  _require(cfg.airflow.retries >= 0, w, "airflow.retries must be >= 0")


def grouping_source_columns(cfg: PipelineConfig) -> Sequence[str]:
  """Raw columns the grouping reads (they must exist in the data)."""
  return list(cfg.grouping.features) if cfg.grouping.mode == "kmeans" else [cfg.grouping.column]
