"""One config per dataset: everything a run needs, loaded from YAML and validated up front.

The pipeline code takes no dataset knowledge of its own: a new CSV needs only a new YAML file.
Paths in the YAML are relative to the repository root unless absolute.

The sections are pydantic dataclasses (stdlib dataclasses underneath, so `dataclasses.asdict`,
`replace` and `vars` keep working): every field is type-checked when the file is read, unknown
fields are refused, and a mistake names the file, the field (dotted path), what was expected and
what was found, before any component runs. Scalars are strict (no "5" for an int, no 3 for a
string, no true for a number) with one deliberate exception: float fields accept numeric strings,
because PyYAML reads `1e-3` (no dot in the mantissa) as a string. A scalar where a list belongs is
refused (write `[x]`), never iterated character by character. Adding a field is one line.
"""
from __future__ import annotations

import dataclasses
import os
import re
import typing
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml
from pydantic import BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass
from typing_extensions import Annotated

from components.grouping import defaults as gd
from models.grouped_regression import features as fk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GROUPING_MODES = ("kmeans", "apriori")
GROUPING_CATEGORICAL = ("error", "onehot", "exclude")
# #13: auto (the lowest eval RMSE of multihead and boosted) and boosted (YDF trunk)
MODEL_VARIANTS = ("auto", "multihead", "embedding", "attention", "global", "boosted")
LABEL_TRANSFORMS = ("log", "none")
# Names the Transform graph / exported model emit next to the raw columns: a raw column of the
# same name would be shadowed (models/grouped_regression/features.py).
RESERVED_COLUMNS = (fk.GROUP_KEY,)
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"   # config name: used in file and pipeline names


class ConfigError(ValueError):
  """A config file is missing a field or holds a value the pipeline cannot use."""


def _numeric_string(v: Any) -> Any:
  """'1e-3' -> 0.001: PyYAML's YAML 1.1 resolver reads floats without a dot as strings."""
  if isinstance(v, str):
    try:
      return float(v.strip())
    except ValueError:
      return v  # the strict float check below reports it, naming the field
  return v


Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), BeforeValidator(_numeric_string)]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Columns = List[Str]
_SECTION = ConfigDict(extra="forbid")


def _list(default: Sequence[Any] = ()):
  return dataclasses.field(default_factory=lambda: list(default))


@dataclass(config=_SECTION)
class DatasetConfig:
  source: Str
  csv_dir: Str
  label: Str
  numeric_features: Columns = _list()
  categorical_features: Columns = _list()
  label_from: Optional[Str] = None
  label_transform: Str = "none"
  schema: Optional[Str] = None
  # hash-bucket shares of the train / eval / test splits: train fits, eval makes every model
  # choice, test alone judges (metrics, gate, blessing).
  split_sizes: Dict[Str, Int] = dataclasses.field(
      default_factory=lambda: {"train": 70, "eval": 15, "test": 15})
  sample_rows: Int = 0              # 0: all rows; else a deterministic sample at `make data`


@dataclass(config=_SECTION)
class GroupingConfig:
  """Defaults come from components/grouping/defaults.py, the component's own (one source)."""
  mode: Str = "kmeans"
  features: Columns = _list()      # kmeans mode only (ignored in apriori mode)
  k: Union[Int, List[Int]] = 8     # kmeans mode only: an int, or [min, max]
  min_group_share: Float = gd.MIN_GROUP_SHARE
  sample_size: Int = gd.SAMPLE_SIZE
  seed: Int = gd.SEED
  column: Optional[Str] = None     # apriori mode only
  min_count: Int = gd.MIN_COUNT    # apriori: rarer categories share the fallback group (see README)
  silhouette_sample: Int = gd.SILHOUETTE_SAMPLE
  categorical: Str = gd.CATEGORICAL  # K-Means on a string feature: error | onehot | exclude
  n_init: Int = gd.N_INIT            # K-Means restarts per k
  tie_tolerance: Float = gd.TIE_TOLERANCE  # silhouettes this close count as a tie: smaller k wins

  @property
  def k_range(self) -> List[int]:
    """The candidate k values: one fixed k, or every k in [min, max]."""
    if isinstance(self.k, int):
      return [self.k]
    lo, hi = self.k
    return list(range(int(lo), int(hi) + 1))


@dataclass(config=_SECTION)
class ModelConfig:
  variant: Str = "auto"          # auto: the lowest eval-RMSE candidate (models/.../auto.py)
  trunk_units: List[Int] = _list([64, 32])
  head_units: Int = 16
  embedding_dim: Int = 8
  attention_heads: Int = 2
  delta_l2: Float = 1e-3
  head_refit: Bool = True
  numeric_bins: Int = 8          # > 1: also piecewise-linear bins; eval picks z vs them (auto.py)
  learning_rate: Float = 3e-3
  batch_size: Int = 64
  epochs: Int = 40
  patience: Int = 6
  interval: Float = 0.9          # level of the served lower/upper interval (intervals.py)
  train_steps: Int = 0
  # In-memory learners (the boosted YDF trunk) load their training rows into one process:
  # above this many train rows they fit on a seeded Bernoulli sample of about this many (a log
  # line says so). 0: no cap. The neural variants stream and ignore it; the boosted heads'
  # statistics still stream over every train row.
  in_memory_max_rows: Int = 1_000_000
  seed: Int = 7
  deterministic: Bool = True     # TF op determinism in run_fn: same data+config+seed, same weights


@dataclass(config=_SECTION)
class EvaluationConfig:
  rmse_upper_bound: Float = 1e9
  overall_rmse_tolerance: Float = 0.05
  group_rmse_tolerance: Float = 0.15
  min_group_examples: Int = 15
  extra_slices: Columns = _list()
  # interval coverage (components/interval_metrics.py) is reported on every slice; set this
  # (e.g. 0.85) to also refuse a blessing when the overall test coverage falls below it
  min_interval_coverage: Optional[Float] = None


@dataclass(config=_SECTION)
class ServingConfig:
  model_name: Str = "model"


@dataclass(config=_SECTION)
class OutputsConfig:
  root: Str = "outputs/default"


@dataclass(config=_SECTION)
class BeamConfig:
  """beam_pipeline_args for every Beam-using component (ExampleGen ... Evaluator, Grouping).

  Runner choice and parallelism live here, never in code: docs/orchestration.md lists the
  DirectRunner modes (with measurements) and the Flink/Spark/Dataflow arguments.
  """
  args: List[Str] = _list()


@dataclass(config=_SECTION)
class KubeflowConfig:
  """Defaults baked into the Kubeflow Pipelines V2 JSON (pipeline/kubeflow_runner.py).

  Each path is only a default: data_root and push_destination are runtime parameters, and
  the pipeline root is the submit-time `pipeline_root`. Empty means: data_root = the dataset's
  csv_dir inside the image (the Dockerfile bakes it in); serving_model_dir = no default (the
  run must pass push_destination); pipeline_root = the KFP backend's default root.
  """
  # #17: no default; REGISTRY/IMAGE:TAG a cluster can pull (kubeflow_runner.check_image).
  image: Str = ""
  pipeline_root: Str = ""
  data_root: Str = ""
  serving_model_dir: Str = ""


@dataclass(config=_SECTION)
class AirflowConfig:
  """DAG settings for pipeline/airflow_dag.py (schedule: a cron/preset string, or null)."""
  schedule: Optional[Str] = None
  start_date: Str = "2024-01-01"
  retries: Int = 0
  # #17: MLMD connection of the DAG. Empty host: SQLite below outputs.root (one worker only);
  # set for MySQL (multi-worker installs). The password comes from the environment variable
  # named by mlmd_mysql_password_env, never from the YAML.
  mlmd_mysql_host: Str = ""
  mlmd_mysql_port: Int = 3306
  mlmd_mysql_database: Str = "mlmd"
  mlmd_mysql_user: Str = ""
  mlmd_mysql_password_env: Str = "MLMD_MYSQL_PASSWORD"


@dataclass(config=_SECTION)
class PipelineConfig:
  """The whole run: dataset, grouping, model, gates, serving and where outputs go."""
  name: Str
  dataset: DatasetConfig
  grouping: GroupingConfig = dataclasses.field(default_factory=GroupingConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
  serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
  outputs: OutputsConfig = dataclasses.field(default_factory=OutputsConfig)
  beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)
  kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)
  airflow: AirflowConfig = dataclasses.field(default_factory=AirflowConfig)
  source_path: Optional[Str] = None  # set by load_config; not a YAML field

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
  def log_path(self) -> str:
    """The full log of a local run (absl, TFX, Beam, TF); the console shows a summary."""
    return os.path.join(self.output_root, "logs", "run.log")

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


_ADAPTER = TypeAdapter(PipelineConfig)
_SECTIONS = {f.name: typing.get_type_hints(PipelineConfig).get(f.name)
             for f in dataclasses.fields(PipelineConfig)}

# pydantic error type -> what the field expects, in the words of a YAML author
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number (e.g. 0.5, 1e-3)",
    "string_type": "a string (quote values YAML reads as numbers or booleans)",
    "bool_type": "true or false",
    "list_type": "a list, e.g. [a, b] (a single value is written [a])",
    "dataclass_type": "a mapping of fields",
    "missing": "a value (the field is required)",
}


def _found(v: Any) -> str:
  return f"{v!r} ({type(v).__name__})"


def _describe(err: ValidationError, where: str) -> ConfigError:
  """One line per problem: file, dotted field, expected, found."""
  fields: Dict[str, List[Any]] = {}   # dotted field -> [expected..., found]
  extra: Dict[tuple, List[str]] = {}
  for e in err.errors(include_url=False):
    loc = list(e["loc"])
    if e["type"] == "unexpected_keyword_argument":
      extra.setdefault(tuple(loc[:-1]), []).append(str(loc[-1]))
      continue
    # a union (grouping.k) tags the loc with each member type: one line per field, "a or b"
    while loc and isinstance(loc[-1], str) and ("[" in loc[-1] or loc[-1] in ("int", "str")):
      loc.pop()
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    expected = _EXPECTED.get(e["type"], e["msg"])
    found = "nothing" if e["type"] == "missing" else _found(e["input"])
    entry = fields.setdefault(field or "<top level>", [[], found])
    if expected not in entry[0]:
      entry[0].append(expected)
  lines = [f"{where}: {f}: expected {' or '.join(exp)}, found {found}"
           for f, (exp, found) in fields.items()]
  for parent, names in extra.items():
    section = ".".join(map(str, parent))
    if not parent:
      lines.append(f"{where}: unknown section(s) {sorted(names)}; known: "
                   f"{sorted(k for k in _SECTIONS if k != 'source_path')}")
      continue
    cls = _SECTIONS.get(parent[0])
    known = sorted(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else []
    lines.append(f"{where}: {section}: unknown field(s) {sorted(names)}; known: {known}")
  return ConfigError("\n".join(lines))


def from_dict(raw: Dict[str, Any], source_path: Optional[str] = None) -> PipelineConfig:
  """Builds and validates a config from a plain dict (the parsed YAML)."""
  where = source_path or "<config>"
  if not isinstance(raw, dict):
    raise ConfigError(f"{where}: expected a YAML mapping of sections, found {_found(raw)}")
  # an empty section (`grouping:` with nothing below) means its defaults
  raw = {k: v for k, v in raw.items() if not (k in _SECTIONS and v is None and k != "name")}
  if "source_path" in raw:
    raise ConfigError(f"{where}: source_path: not a config field (set by load_config)")
  try:
    cfg = _ADAPTER.validate_python(raw)
  except ValidationError as e:
    raise _describe(e, where) from None
  cfg.source_path = source_path
  validate(cfg)
  return cfg


def load_config(path: str, overrides: Optional[Dict[str, Any]] = None) -> PipelineConfig:
  """Reads a YAML config; `overrides` maps dotted keys ('model.epochs') to values."""
  path = resolve_path(path)
  if not os.path.exists(path):
    raise ConfigError(f"config file not found: {path}")
  with open(path) as f:
    try:
      raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
      raise ConfigError(f"{path}: not valid YAML: {e}") from None
  for dotted, value in (overrides or {}).items():
    set_dotted(raw, dotted, value)
  return from_dict(raw, source_path=path)


def set_dotted(raw: Dict[str, Any], dotted: str, value: Any) -> None:
  node = raw
  *parents, leaf = dotted.split(".")
  for key in parents:
    child = node.get(key)
    if not isinstance(child, dict):
      child = node[key] = {}
    node = child
  node[leaf] = value


def _require(cond: bool, where: str, message: str) -> None:
  if not cond:
    raise ConfigError(f"{where}: {message}")


def _check_columns(cfg: PipelineConfig, w: str) -> None:
  """Column names: any name pandas reads works end to end, unless two of them would share a
  tensor name (TF maps every character outside [A-Za-z0-9_] to '_' in signature inputs and the
  model's input keys) or a name the model emits itself."""
  d, g = cfg.dataset, cfg.grouping
  named = {"dataset.label": [d.label], "dataset.label_from": [d.label_from] if d.label_from else [],
           "dataset.numeric_features": d.numeric_features,
           "dataset.categorical_features": d.categorical_features,
           "grouping.features" if g.mode == "kmeans" else "grouping.column":
               list(g.features) if g.mode == "kmeans" else [g.column] if g.column else [],
           "evaluation.extra_slices": cfg.evaluation.extra_slices}
  for field, cols in named.items():
    for c in cols:
      _require(c.strip() != "", w, f"{field}: expected a column name, found an empty string")
      _require(c not in RESERVED_COLUMNS, w,
               f"{field}: '{c}' is a reserved name (the model emits it: "
               f"{list(RESERVED_COLUMNS)}); rename the column in the CSV")
  columns = set(cfg.feature_columns) | set(grouping_source_columns(cfg)) | {d.label}
  by_tensor: Dict[str, List[str]] = {}
  for c in sorted(columns):
    by_tensor.setdefault(fk.raw_input_name(c), []).append(c)
  clashes = {t: cs for t, cs in by_tensor.items() if len(cs) > 1}
  _require(not clashes, w, "columns " + "; ".join(f"{cs} all map to the tensor name '{t}'"
                                                   for t, cs in clashes.items())
           + " (TF allows only [A-Za-z0-9_]); rename one of them in the CSV")


def validate(cfg: PipelineConfig) -> None:
  """Rejects configs that would fail late (in a component) with an error that names the field."""
  w = cfg.source_path or "<config>"
  d, g, m = cfg.dataset, cfg.grouping, cfg.model
  _require(re.fullmatch(NAME_PATTERN, cfg.name) is not None, w,
           f"name: expected letters, digits, '_', '.' or '-' (it names files), found {cfg.name!r}")
  _require(bool(d.numeric_features or d.categorical_features), w,
           "dataset: at least one of numeric_features / categorical_features is needed")
  dupes = {c for c in cfg.feature_columns if cfg.feature_columns.count(c) > 1}
  _require(not dupes, w, f"dataset: columns listed twice: {sorted(dupes)}")
  _require(d.label not in cfg.feature_columns, w,
           f"dataset.label '{d.label}' is also listed as a feature")
  _require(d.label_transform in LABEL_TRANSFORMS, w,
           f"dataset.label_transform '{d.label_transform}' not in {LABEL_TRANSFORMS}")
  _require(d.label_from is None or d.label_from != d.label, w,
           f"dataset.label_from '{d.label_from}' equals dataset.label: leave label_from out")
  _validate_split_sizes(d.split_sizes, w)
  _require(d.sample_rows >= 0, w, "dataset.sample_rows must be >= 0 (0: all rows)")
  _require(g.mode in GROUPING_MODES, w, f"grouping.mode '{g.mode}' not in {GROUPING_MODES}")
  if g.mode == "kmeans":  # grouping.column is not used in this mode
    _require(bool(g.features), w, "grouping.features: K-Means needs at least one feature")
    if not isinstance(g.k, int):
      _require(len(g.k) == 2 and g.k[0] <= g.k[1], w,
               f"grouping.k range must be [min, max] with min <= max (got {g.k})")
      _require(g.k[0] >= 2, w, "grouping.k range: automatic selection needs min >= 2")
    _require(min(g.k_range) >= 1, w, f"grouping.k must be >= 1 (got {g.k})")
  else:  # grouping.features and grouping.k are not used in this mode
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
  _require(m.learning_rate > 0 and m.delta_l2 >= 0, w,
           "model: learning_rate must be > 0 and delta_l2 >= 0")
  _require(0.0 < m.interval < 1.0, w, f"model.interval {m.interval} must be in (0, 1)")
  _require(m.numeric_bins == 0 or 2 <= m.numeric_bins <= 64, w,
           f"model.numeric_bins must be 0 (off) or 2..64, got {m.numeric_bins}")
  e = cfg.evaluation
  _require(e.overall_rmse_tolerance >= 0 and e.group_rmse_tolerance >= 0, w,
           "evaluation: tolerances must be >= 0")
  _require(e.min_group_examples >= 0, w, "evaluation.min_group_examples must be >= 0")
  _require(e.rmse_upper_bound > 0, w, "evaluation.rmse_upper_bound must be > 0")
  _require(e.min_interval_coverage is None or 0.0 < e.min_interval_coverage < 1.0, w,
           f"evaluation.min_interval_coverage {e.min_interval_coverage} must be in (0, 1) "
           "(a share of test rows; leave it out to report coverage without gating)")
  slice_columns = set(cfg.feature_columns) | set(grouping_source_columns(cfg))
  unknown = [c for c in e.extra_slices if c not in slice_columns]
  _require(not unknown, w, f"evaluation.extra_slices: column(s) {unknown} are not dataset "
           f"columns; choose from {sorted(slice_columns)}")
  _check_columns(cfg, w)
  bad_args = [a for a in cfg.beam.args if not a.startswith("--")]
  _require(not bad_args, w,
           f"beam.args: each entry must be a '--flag[=value]' string, got {bad_args}")
  _require(cfg.airflow.retries >= 0, w, "airflow.retries must be >= 0")
  _require(0 < cfg.airflow.mlmd_mysql_port < 65536, w,
           "airflow.mlmd_mysql_port must be a TCP port (1..65535)")


SPLITS = ("train", "eval", "test")


def _validate_split_sizes(sizes: Any, w: str) -> None:
  """train/eval/test shares: exactly these three, whole numbers, none empty, summing to 100."""
  _require(isinstance(sizes, dict) and set(sizes) == set(SPLITS), w,
           f"dataset.split_sizes must name exactly {list(SPLITS)}, got {sizes}")
  bad = {k: v for k, v in sizes.items()
         if isinstance(v, bool) or not isinstance(v, int) or v <= 0}
  _require(not bad, w, f"dataset.split_sizes: every split needs a positive whole percentage "
           f"(an empty split cannot train, choose or judge); got {bad}")
  _require(sum(sizes.values()) == 100, w, f"dataset.split_sizes must add up to 100 "
           f"(percent), got {sum(sizes.values())}: {sizes}")


def grouping_source_columns(cfg: PipelineConfig) -> Sequence[str]:
  """Raw columns the grouping reads (they must exist in the data)."""
  return list(cfg.grouping.features) if cfg.grouping.mode == "kmeans" else [cfg.grouping.column]
