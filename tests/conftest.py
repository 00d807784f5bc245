"""Test-wide settings: Keras 2 for TFX 1.16, quiet TF logs, marks."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: runs a whole pipeline or an orchestrator (minutes)")
