"""The train scan: exact counts, a bounded uniform sample that does not depend on how the work
is split, ordered or merged, and the memory bound."""
import numpy as np
import pytest

from components.grouping import example_io, scan
from components.grouping.fitting import GroupingError
from tests.grouping import helpers as h


def _shard_batches(n, seed, batch):
  cols, _ = h.blobs(n, seed=seed)
  rows = h.rows_of(cols)
  for i, r in enumerate(rows):
    r["zone"] = "east" if i % 3 else "west"
    if i % 10 == 0:
      r["lon"] = None
  recs = np.array([h.to_example(r) for r in rows], dtype=object)
  return [recs[i:i + batch] for i in range(0, n, batch)]


def _decoded(batches, features, mode, where):
  """Record batches as the executor's reader decodes them (projected schema, kinds probed)."""
  kinds = example_io.batch_kinds([r for b in batches for r in b], features, where)
  decode = example_io.decoder(kinds, scan.usage_fn(mode), where)
  for b in batches:
    yield decode(list(b))


def _scan(shards, sample_size, batch_sizes=None, merge_order=None):
  parts = []
  for name, batches in shards.items():
    s = scan.TrainScan(["lon", "lat", "zone"], "kmeans", sample_size)
    if batch_sizes:   # re-batch the shard
      flat = np.concatenate(batches)
      batches = [flat[i:i + batch_sizes] for i in range(0, len(flat), batch_sizes)]
    parsed = _decoded(batches, s.features, s.mode, name)
    parts.append(scan.scan_batches(s, parsed, scan.shard_key(0, name)))
  order = merge_order or range(len(parts))
  total = scan.TrainScan(["lon", "lat", "zone"], "kmeans", sample_size)
  for i in order:
    total.merge(parts[i])
  return total.result()


@pytest.fixture(scope="module")
def shards():
  return {f"part-{i}": _shard_batches(700, seed=i, batch=128) for i in range(3)}


def test_counts_are_exact(shards):
  r = _scan(shards, sample_size=10_000)
  assert r.rows == 2100 and r.sample_rows == 2100
  assert r.missing == {"lon": 210, "lat": 0, "zone": 0}
  assert r.kinds == {"lon": "float", "lat": "float", "zone": "bytes"}
  assert r.categories["zone"] == {"east": 1398, "west": 702}


def test_sample_is_bounded_and_independent_of_batching_and_merge_order(shards):
  a = _scan(shards, sample_size=500)
  b = _scan(shards, sample_size=500, batch_sizes=37, merge_order=[2, 0, 1])
  assert a.sample_rows == 500
  np.testing.assert_array_equal(a.hashes, b.hashes)
  np.testing.assert_array_equal(a.sample["lat"], b.sample["lat"])
  assert a.sample["zone"].tolist() == b.sample["zone"].tolist()
  assert np.all(np.diff(a.hashes.astype(np.float64)) >= 0)   # sorted by hash


def test_sample_is_the_bottom_n_by_hash_of_all_rows(shards):
  full = _scan(shards, sample_size=10_000)
  part = _scan(shards, sample_size=300)
  np.testing.assert_array_equal(part.hashes, np.sort(full.hashes)[:300])
  # a uniform sample: shares of a category match the full data within sampling error
  assert abs(np.mean(part.sample["zone"] == "west") - 702 / 2100) < 0.08


def test_buffer_stays_within_twice_the_sample_size():
  s = scan.TrainScan(["x"], "kmeans", 100)
  for start in range(0, 20_000, 1000):
    s.add_batch(scan.row_hashes(1, start, 1000), {"x": np.arange(1000.0)}, {"x": "float"})
    assert s._buffered <= 2 * 100 + 1000   # pylint: disable=protected-access
  assert s.result().sample_rows == 100


def test_a_feature_absent_from_one_shard_merges_with_its_type_elsewhere():
  a = scan.TrainScan(["zone"], "kmeans", 10)
  a.add_batch(scan.row_hashes(1, 0, 2), {"zone": np.full(2, np.nan)}, {"zone": None})
  b = scan.TrainScan(["zone"], "kmeans", 10)
  b.add_batch(scan.row_hashes(2, 0, 2), {"zone": np.array(["e", "w"], dtype=object)},
              {"zone": example_io.BYTES})
  r = a.merge(b).result()
  assert r.kinds["zone"] == "bytes" and r.missing["zone"] == 2
  assert sorted(r.sample["zone"].tolist()) == ["", "", "e", "w"]


def test_conflicting_types_across_shards_are_an_error():
  a = scan.TrainScan(["c"], "apriori", 10)
  a.add_batch(scan.row_hashes(1, 0, 1), {"c": np.array(["3"], dtype=object)}, {"c": "int"})
  b = scan.TrainScan(["c"], "apriori", 10)
  b.add_batch(scan.row_hashes(2, 0, 1), {"c": np.array(["x"], dtype=object)}, {"c": "bytes"})
  with pytest.raises(GroupingError, match="'c' has int values in some train examples and bytes"):
    a.merge(b)
