"""Grouping component: fits K-Means or a-priori groups on train; counts rows per group per split.

`load(uri)` reads a grouping artifact in one call (fitted grouping, summary, report).
"""


def load(uri: str):
  """The grouping artifact at `uri` as a store.GroupingArtifact (displays its report)."""
  from components.grouping import store  # pylint: disable=g-import-not-at-top
  return store.load_artifact(uri)
