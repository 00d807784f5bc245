"""Runs the pipeline with LocalDagRunner (SQLite metadata, Beam DirectRunner), writes the
evaluation report under the config's report_dir and prints the per-group results, the report
paths and where the pushed model is.

Quiet by default: one line per component on the console, everything else (absl, TFX, Beam, TF)
in outputs/<name>/logs/run.log; `--verbose` shows it all. Config, data and anomaly errors print
one message without a traceback (`--verbose` shows the traceback).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback

from pipeline.config import ConfigError, PipelineConfig, load_config

log = logging.getLogger(__name__)


def parse_overrides(pairs):
  import yaml  # pylint: disable=g-import-not-at-top
  out = {}
  for p in pairs or []:
    if "=" not in p:
      raise ConfigError(f"--set {p!r}: expected KEY=VALUE, e.g. model.epochs=5")
    k, v = p.split("=", 1)
    out[k] = yaml.safe_load(v)
  return out


def units(cfg: PipelineConfig) -> str:
  """What the RMSE is measured in, e.g. 'RMSE in log(Sale_Price)'."""
  d = cfg.dataset
  if d.label_from and d.label_transform == "log":
    return f"RMSE in log({d.label_from})"
  return f"RMSE in {d.label_from or d.label}"


def run(cfg, progress=None, enable_cache: bool = True):
  """The pipeline, then its report; `progress` (a logging handler) sees every record.

  One writer per outputs root: a second run on the same root exits at once (run_lock).
  `enable_cache=False` re-executes every component (TFX's cache is otherwise reused whenever a
  node's inputs, settings and code_version are unchanged)."""
  from pipeline import run_lock  # pylint: disable=g-import-not-at-top
  os.makedirs(cfg.output_root, exist_ok=True)
  with run_lock.hold(cfg.output_root):
    return _run(cfg, enable_cache)


def _run(cfg, enable_cache: bool = True):
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import run_lock, run_summary  # pylint: disable=g-import-not-at-top
  from pipeline.from_config import pipeline_args  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  from pipeline.report import write_report  # pylint: disable=g-import-not-at-top
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  run_lock.mark_abandoned(connection)
  pipeline = create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection,
                             enable_cache=enable_cache)
  tfx.orchestration.LocalDagRunner().run(pipeline)
  summary = run_summary.summarize(connection)
  write_report(summary, cfg.report_dir, cfg.name)  # sets summary.report_path
  return summary


def _quiet_run(cfg: PipelineConfig, verbose: bool, enable_cache: bool = True):
  from pipeline import run_log  # pylint: disable=g-import-not-at-top
  with run_log.captured(cfg.log_path, verbose=verbose) as console:
    # imported here: TF/TFX import chatter belongs in the log
    from data import prepare  # pylint: disable=g-import-not-at-top
    from pipeline import component_results, progress  # pylint: disable=g-import-not-at-top
    from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
    csv = prepare.prepare(cfg)
    console.write(f"{time.strftime('%H:%M:%S')}  {'data':<30} ready    "
                  f"{progress.short_path(csv)}\n")
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
    os.makedirs(cfg.output_root, exist_ok=True)
    handler = progress.Progress(console, connection, component_results.DESCRIBERS)
    logging.getLogger().addHandler(handler)
    try:
      return run(cfg, handler, enable_cache=enable_cache), console
    finally:
      logging.getLogger().removeHandler(handler)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                 help="override config fields, e.g. model.epochs=5 grouping.k=[4,10]")
  p.add_argument("--verbose", action="store_true",
                 help="show every log line (absl, TFX, Beam, TF) and tracebacks")
  p.add_argument("--no-cache", action="store_true",
                 help="re-execute every component instead of reusing cached results (the "
                      "cache already sees changed data, settings and project code)")
  args = p.parse_args(argv)
  start = time.time()
  cfg = None
  try:
    cfg = load_config(args.config, overrides=parse_overrides(args.set))
    rel = lambda p: p if os.path.relpath(p).startswith("..") else os.path.relpath(p)  # noqa: E731
    print(f"== {cfg.name}: {rel(cfg.source_path)} -> {rel(cfg.output_root)} "
          f"(full log: {rel(cfg.log_path)})", flush=True)
    summary, console = _quiet_run(cfg, args.verbose, enable_cache=not args.no_cache)
  except Exception as e:  # pylint: disable=broad-except
    return _fail(e, cfg, args.verbose)
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  console.write(f"\n== {cfg.name}: pipeline finished in {time.time() - start:.0f} s ==\n")
  for line in run_summary.describe(summary, cwd=os.getcwd(), units=units(cfg)):
    console.write(line + "\n")
  console.flush()
  return 0


def _fail(e: Exception, cfg, verbose: bool) -> int:
  """One clear message; the traceback only with --verbose (it is in the run log anyway)."""
  from data.prepare import DataError  # pylint: disable=g-import-not-at-top
  known = (isinstance(e, (ConfigError, DataError))
           or type(e).__name__ in ("DataAnomalyError", "RunLockedError"))
  if verbose:
    traceback.print_exc()
  kind = "config error" if isinstance(e, ConfigError) else (
      "run refused" if type(e).__name__ == "RunLockedError" else
      "data error" if known else f"run failed ({type(e).__name__})")
  message = str(e).strip() or repr(e)
  if not known and len(message) > 800:
    message = message[:800] + " ..."
  print(f"{kind}: {message}", file=sys.stderr)
  if cfg is not None and os.path.exists(cfg.log_path):
    if not known:
      with open(cfg.log_path, "a", encoding="utf-8") as f:
        traceback.print_exc(file=f)
    print(f"full log: {cfg.log_path}", file=sys.stderr)
  return 2 if isinstance(e, ConfigError) else 1


if __name__ == "__main__":
  sys.exit(main())
