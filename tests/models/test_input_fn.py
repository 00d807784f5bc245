"""trainer.input_fn reads the transformed shards in the consuming thread (READER_THREADS): every
row exactly once, as TFXIO's default, parallel reader gives them, and on a one-shard split (the
Transform's output up to ~100k rows) in the same shuffled order, so that the change is one of
speed (measured by `make bench-scale`, not here). With several shards the sequential interleave
alternates them (cycle length = cores) where the parallel one reads them one after another."""
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from models.grouped_regression import features as fk
from models.grouped_regression import trainer
from tests.models import transform_sample


def _shards(patterns, out_dir, n):
  """The records of the files matching `patterns` dealt round-robin into n gzipped shards."""
  files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
  compression = "GZIP" if files[0].endswith(".gz") else ""
  records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression)]
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, f"part-{i}.gz") for i in range(n)]
  writers = [tf.io.TFRecordWriter(p, "GZIP") for p in paths]
  for i, r in enumerate(records):
    writers[i % n].write(r)
  for w in writers:
    w.close()
  return paths, len(records)


def _rows(ds):
  return [np.concatenate(v) for v in zip(*[
      (y.numpy().ravel(), x[fk.GROUP_KEY].numpy().ravel()) for x, y in ds])]


def _default(files, output, shuffle):
  """TFXIO's reader with its default options (parallel interleave)."""
  return tfxio.TFExampleRecord(
      file_pattern=files, schema=output.transformed_metadata.schema).TensorFlowDataset(
          tfxio.TensorFlowDatasetOptions(batch_size=16, label_key=fk.LABEL_KEY, num_epochs=1,
                                         shuffle=shuffle, shuffle_seed=0))


def test_input_fn_yields_the_default_readers_rows(tmp_path):
  sample = transform_sample.build(str(tmp_path / "tft"), rows=300)
  output = tft.TFTransformOutput(sample.transform_output)
  one, count = _shards(sample.train_files, str(tmp_path / "one"), 1)
  three, _ = _shards(sample.train_files, str(tmp_path / "three"), 3)
  for shuffle in (True, False):
    for files in (one, three):
      ours = trainer.input_fn(files, sample.data_accessor(), output, 16, shuffle=shuffle)
      (label, group), (want_label, want_group) = _rows(ours), _rows(_default(files, output,
                                                                            shuffle))
      assert len(label) == count, (shuffle, len(files))
      if len(files) == 1:   # one shard: the same order
        np.testing.assert_array_equal(label, want_label)
        np.testing.assert_array_equal(group, want_group)
      else:                 # the same rows
        assert sorted(zip(label, group)) == sorted(zip(want_label, want_group))


def test_read_once_replays_read_only_passes_from_memory_and_still_shuffles(tmp_path):
  """trainer.read_once: an unshuffled split is parsed on its first pass and replayed after (the
  files can be gone), batch for batch what streaming gives; one cache per split, shared by every
  caller; shuffled SGD datasets still come from the files, reshuffled each epoch."""
  sample = transform_sample.build(str(tmp_path / "tft"), rows=300)
  output = tft.TFTransformOutput(sample.transform_output)
  files, count = _shards(sample.train_files, str(tmp_path / "copy"), 2)
  stream = lambda f, shuffle: trainer.input_fn(f, sample.data_accessor(), output, 32,
                                               shuffle=shuffle)
  data = trainer.read_once(stream)
  want = _rows(stream(files, False))
  first = _rows(data(files, False))
  for got, expected in zip(first, want):
    np.testing.assert_array_equal(got, expected)
  assert data(files, False) is data(list(files), False)       # one cache per split
  sgd = data(files, True)                                     # iterated once per epoch by fit
  assert sgd is not data(files, True)                         # not cached
  epochs = [_rows(sgd)[0] for _ in range(2)]
  assert len(epochs[0]) == count and not np.array_equal(epochs[0], epochs[1])   # reshuffled
  for path in files:
    os.remove(path)
  replay = _rows(data(files, False))                          # from memory: no file is read
  for got, expected in zip(replay, want):
    np.testing.assert_array_equal(got, expected)
