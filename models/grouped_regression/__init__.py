"""Grouped-regression model: preprocessing_fn, Keras variants, run_fn and signatures.

TFX finds the user functions by dotted path:
  models.grouped_regression.preprocessing.preprocessing_fn
  models.grouped_regression.trainer.run_fn
"""
