"""Model code: feature keys, preprocessing_fn, Keras grouped-regression variants, run_fn."""
import os

# TFX/TFMA 1.16 expect Keras 2 (tf-keras); set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
