"""AutoGraph leaves tf_keras's own code alone, as newer TensorFlow releases do, and TFT's and
tfx_bsl's, which never needed it.

Why: with TF_USE_LEGACY_KERAS=1, Keras 2 is the `tf_keras` package. TensorFlow 2.16's AutoGraph
skips `keras` and `tensorflow` (config.CONVERSION_RULES) but not `tf_keras`, so every
`tf.function` that touches a Keras model -- fit's train and test steps, evaluate, predict, the
serving signatures -- re-parses and transpiles Keras's layer, loss and metric code, Python
source to AST and back, function by function. Measured on Ames's Trainer (three candidates):
run_fn 45 s -> 28 s, the first neural candidate 17 s -> 5.5 s, with the same eval RMSEs to the
last digit. Keras's code is written to be traced as is (TensorFlow never converted it when it
lived under `keras`), and upstream TensorFlow's rule list now ends with DoNotConvert("tf_keras");
this adds that rule on 2.16 and does nothing where the rule is already there. Our own layers,
and every other library, are converted as before.

The same holds for TensorFlow Transform and tfx_bsl: both build graphs themselves and run
unchanged in TF1 graph mode (Transform's `force_tf_compat_v1`), where AutoGraph never touches
them, so nothing in them needs conversion. Yet every `input_fn` dataset (tfx_bsl's example
parsing, 21 datasets in Ames's `auto` run) and every serving signature (TFT's transform layer)
re-transpiled their Python: 2.5 s of Ames's Trainer, 3.2 s -> 0.7 s of AutoGraph in all, with
the same eval RMSEs and served outputs (the export and serving tests compare them). Functions a
`tf.function` or `Dataset.map` is handed directly are still converted, as for tf_keras.

Importing the module installs the rules (model.py and boosted.py import it: everything that
builds a Keras model or a serving signature).
"""
from tensorflow.python.autograph.core import config as _config
from tensorflow.python.autograph.core import config_lib as _config_lib

PACKAGE = "tf_keras"
PACKAGES = (PACKAGE, "tensorflow_transform", "tfx_bsl")


def install() -> None:
  """Appends DoNotConvert(p) to AutoGraph's rules for each of PACKAGES without a rule."""
  for package in PACKAGES:
    if not any(rule.matches(package) for rule in _config.CONVERSION_RULES):
      _config.CONVERSION_RULES = tuple(_config.CONVERSION_RULES) + (
          _config_lib.DoNotConvert(package),)


install()
