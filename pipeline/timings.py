"""Per-component wall time of pipeline runs, read from MLMD execution timestamps."""
from __future__ import annotations

from typing import List, Tuple

from ml_metadata.metadata_store import metadata_store


def component_seconds(connection_config) -> List[Tuple[int, str, str, float]]:
  """(execution id, component type, state, seconds) for every execution, oldest first."""
  mlmd = metadata_store.MetadataStore(connection_config)
  types = {t.id: t.name for t in mlmd.get_execution_types()}
  states = {2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED", 6: "CANCELED"}
  out = []
  for e in sorted(mlmd.get_executions(), key=lambda e: e.id):
    secs = (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0
    out.append((e.id, types.get(e.type_id, "?").split(".")[-1],
                states.get(e.last_known_state, str(e.last_known_state)), secs))
  return out
