"""The GroupedEvaluator's hook module (its `module_path`): TFMA extension points the stock TFX
Evaluator executor loads by name with udf_utils. Every hook must live in this one module,
because with a module_path set, udf_utils looks every hook up there (and silently drops one it
cannot find).

`custom_extractors`: slice by the candidate's groups only. TFMA 0.47's SliceKeyExtractor looks a
slice key up in the transformed features of EVERY model spec and takes the union, so with a
baseline the candidate alone runs its `transform_features` (candidate_only_slicing, applied to
the eval config by the executor). When only one model yields transformed features,
ModelSignaturesDoFn stores them without the model-name key and the multi-model
SliceKeyExtractor finds nothing; the extractor added here re-keys them by candidate.

No hook loads TF-DF ops: TFMA's model_util imports tensorflow_decision_forests itself (when it is
installed) in every process that loads a model, Beam workers included, so a `boosted` model
evaluates under multi-process and distributed runners as it is
(tests/test_pipeline_auto.py::test_multiprocess_evaluator_loads_a_boosted_model).

A module of its own, holding no component classes, because udf_utils `importlib.reload`s the
hook module when it is already loaded: reloading the module that defines GroupedEvaluator would
leave two generations of its spec class in one process, and the next pipeline built there
would fail spec validation.
"""
from __future__ import annotations

import copy

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants

MODULE_PATH = __name__


def candidate_only_slicing(config: tfma.EvalConfig, has_baseline: bool) -> None:
  """Candidate and baseline as explicit model specs; only the candidate's transform graph runs
  (and so defines `group_id` slices). In place; no-op without a baseline."""
  if not has_baseline or len(config.model_specs) != 1:
    return
  candidate = config.model_specs[0]
  candidate.name = tfma.CANDIDATE_KEY
  baseline = config.model_specs.add()
  baseline.CopyFrom(candidate)
  baseline.name = tfma.BASELINE_KEY
  baseline.is_baseline = True
  del baseline.preprocessing_function_names[:]


@beam.ptransform_fn
def _KeyTransformedFeaturesByCandidate(extracts):  # pylint: disable=invalid-name
  def rekey(extract):
    transformed = extract.get(tfma_constants.TRANSFORMED_FEATURES_KEY)
    if not isinstance(transformed, dict) or tfma.CANDIDATE_KEY in transformed:
      return extract
    out = copy.copy(extract)
    out[tfma_constants.TRANSFORMED_FEATURES_KEY] = {tfma.CANDIDATE_KEY: transformed}
    return out
  return extracts | beam.Map(rekey)


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config):
  """TFMA's default extractors; with a baseline, the candidate's transformed features (the only
  ones computed, see candidate_only_slicing) are keyed by its name so slicing finds them."""
  extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                       eval_config=eval_config,
                                       tensor_adapter_config=tensor_adapter_config)
  if len(eval_config.model_specs) < 2:
    return extractors
  at = next(i for i, e in enumerate(extractors) if e.stage_name == "ExtractTransformedFeatures")
  extractors.insert(at + 1, tfma.extractors.Extractor(
      stage_name="KeyTransformedFeaturesByCandidate",
      ptransform=_KeyTransformedFeaturesByCandidate()))  # pylint: disable=no-value-for-parameter
  return extractors
