"""The run lock refuses a second process on the same outputs root, and executions left RUNNING
by a dead run are marked abandoned in a real (SQLite) MLMD store."""
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import run_lock

HOLD = ("import sys, time; from pipeline import run_lock\n"
        "with run_lock.hold(sys.argv[1]):\n  print('held', flush=True); time.sleep(30)\n")


def test_a_second_process_on_the_same_root_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(run_lock.RunLockedError, match=rf"another run \(pid {holder.pid}\) holds"):
      with run_lock.hold(str(tmp_path)):
        pass
  finally:
    holder.kill()   # like kill -9: the kernel releases the flock
    holder.wait()
  with run_lock.hold(str(tmp_path)) as path:
    assert path.endswith(run_lock.LOCK_FILE)


def test_running_executions_of_a_dead_run_are_marked_abandoned(tmp_path):
  conn = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))
  store = metadata_store.MetadataStore(conn)
  t = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
  state = metadata_store_pb2.Execution
  running = metadata_store_pb2.Execution(type_id=t, last_known_state=state.RUNNING)
  done = metadata_store_pb2.Execution(type_id=t, last_known_state=state.COMPLETE)
  rid, did = store.put_executions([running, done])
  lines = run_lock.mark_abandoned(conn)
  assert lines == [f"execution {rid} (Trainer) was left RUNNING by a dead run: marked abandoned"]
  r, d = store.get_executions_by_id([rid, did])
  assert r.last_known_state == metadata_store_pb2.Execution.CANCELED
  assert r.custom_properties[run_lock.ABANDONED_PROPERTY].int_value == 1
  assert d.last_known_state == metadata_store_pb2.Execution.COMPLETE
  assert run_lock.mark_abandoned(conn) == []
