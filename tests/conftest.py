"""Test-wide settings: Keras 2 for TFX 1.16, quiet TF logs, marks, and the order files run in."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: runs a whole pipeline or an orchestrator (minutes)")


def pytest_collection_modifyitems(config, items):
  """Files with a `slow` test first, the rest after, each group in collection order.

  Why: `make test` hands whole files to two xdist workers in this order (--dist loadfile,
  --no-loadscope-reorder). A pipeline file handed out last keeps one worker busy for minutes
  while the other idles; handed out first, the many short files fill in around it. The order
  is only a schedule: every test still runs, and each file's tests keep their own order.
  """
  slow_files = {item.path for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.path not in slow_files)   # stable: keeps collection order
