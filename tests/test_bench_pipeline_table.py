"""bench.pipeline_speed's tables from given runs (`make bench-pipeline` runs the pipelines).

The ratio is the default Ames run over taxi; the one-network Ames run is context beside it and
never enters the ratio or the target verdict."""
from bench import pipeline_speed


def _run(pipeline, wall, trainer, transform=20.0):
  return {"pipeline": pipeline, "wall_s": wall, "peak_rss_mb": 1000.0,
          "components": {"Transform": {"seconds": transform, "peak_rss_mb": 900.0},
                         "Trainer": {"seconds": trainer, "peak_rss_mb": 950.0}}}


def _write(tmp_path, runs):
  return "\n".join(pipeline_speed.write(runs, [], 2, "0.1", "0.2",
                                        path=str(tmp_path / "pipeline.md")))


def test_ratio_is_default_ames_over_taxi_and_one_network_is_context(tmp_path):
  runs = [_run("taxi", 80, 30), _run("ames", 78, 31), _run("ames-one", 60, 12),
          _run("taxi", 70, 26, transform=24), _run("ames", 72, 29), _run("ames-one", 56, 10)]
  text = _write(tmp_path, runs)
  assert "**Ratio Ames / taxi: 1.00x**" in text and "target <= 0.8x: NOT met" in text
  assert "Ames with one network in its Trainer (as taxi trains one), 0.77x taxi" in text
  assert "its Trainer took 12 s, 10 s." in text
  # per pipeline: mean, [range] over the repeats, share of the mean wall time
  transform = next(line for line in text.splitlines() if line.startswith("| Transform |"))
  assert transform == ("| Transform | 22 [20-24] (29%) / 900 | 20 (27%) / 900 | "
                       "20 (34%) / 900 | -2 |")
  assert open(tmp_path / "pipeline.md").read() == text


def test_without_the_one_network_run_there_is_no_context_line(tmp_path):
  text = _write(tmp_path, [_run("taxi", 100, 30), _run("ames", 75, 25)])
  assert "**Ratio Ames / taxi: 0.75x**" in text and "target <= 0.8x: met" in text
  assert "one network" not in text and "ames-one" not in text
