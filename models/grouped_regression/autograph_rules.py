"""AutoGraph leaves tf_keras's own code alone, as newer TensorFlow releases do.

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

Importing the module installs the rule (model.py and boosted.py import it: everything that
builds a Keras model).
"""
from tensorflow.python.autograph.core import config as _config
from tensorflow.python.autograph.core import config_lib as _config_lib

PACKAGE = "tf_keras"


def install() -> None:
  """Appends DoNotConvert("tf_keras") to AutoGraph's rules unless a rule for it exists."""
  if not any(rule.matches(PACKAGE) for rule in _config.CONVERSION_RULES):
    _config.CONVERSION_RULES = tuple(_config.CONVERSION_RULES) + (
        _config_lib.DoNotConvert(PACKAGE),)


install()
