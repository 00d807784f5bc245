"""Feature keys shared by preprocessing, training, export and evaluation.

Raw column names come from the config; these helpers name what the Transform graph emits.
"""
GROUP_KEY = "group_id"          # int64 group id, computed in the Transform graph
LABEL_KEY = "label"             # transformed label (raw label units)
PREDICTION_KEY = "prediction"   # serving output
GROUP_OUTPUT_KEY = "group_id"   # serving output: the group the model assigned


def tensor_name(name: str) -> str:
  """A raw column name as TF accepts it in keys, layer and file names: any character outside
  [A-Za-z0-9_] becomes '_' ('county.name' -> 'county_name'); plain names are unchanged."""
  return "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in name)


def raw_input_name(name: str) -> str:
  """The `serving_raw` input for a raw column: TF's rule for tf.function argument names
  (tensor_name, prefixed 'arg_' unless it starts with a letter), applied up front so the
  signature binds. pipeline/config.py refuses columns that would share one."""
  safe = tensor_name(name)
  return safe if safe[:1].isalpha() else f"arg_{safe}"


def numeric_key(name: str) -> str:
  return f"{tensor_name(name)}_z"


def piecewise_key(name: str) -> str:
  """[numeric_bins] piecewise-linear encoding of a numeric feature (model.numeric_bins > 1)."""
  return f"{tensor_name(name)}_ple"


def categorical_key(name: str) -> str:
  return f"{tensor_name(name)}_idx"


def vocab_name(name: str) -> str:
  return f"vocab_{tensor_name(name)}"
