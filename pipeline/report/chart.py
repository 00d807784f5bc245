"""The report's PNG: RMSE per group, candidate vs baseline, failing groups in red, groups too
small to be gated hatched."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
from matplotlib.container import BarContainer  # pylint: disable=wrong-import-position
from matplotlib.patches import Patch  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from pipeline.eval_config import RMSE  # pylint: disable=wrong-import-position
from pipeline.report.content import ReportContent  # pylint: disable=wrong-import-position

CANDIDATE_COLOR, BASELINE_COLOR, FAIL_COLOR = "#3b73b9", "#b0b0b0", "#d62728"


def _nan(x):
  return np.nan if x is None else x


MAX_BARS = 40       # beyond this many groups: distribution + worst groups, not one bar each
WORST_N = 20
MAX_WIDTH_IN = 12.0  # figure width cap: 12 in x 110 dpi = 1,320 px


def _rmse(g) -> float:
  v = g.candidate.get(RMSE)
  return np.nan if v is None else v


def rmse_by_group(content: ReportContent, path: str) -> str:
  """One bar per group when there are few; else RMSE against group size for every group plus
  the worst groups and every failing group as bars. The image width is bounded either way."""
  if len(content.groups) > MAX_BARS:
    return _many_groups(content, path)
  return _bars(content, content.groups, path)


def _many_groups(content: ReportContent, path: str) -> str:
  groups = content.groups
  fig, (left, right) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 5.0), dpi=110,
                                    gridspec_kw={"width_ratios": [1.2, 1]})
  n = np.array([g.candidate.get("example_count", 0) or 0 for g in groups], dtype=float)
  r = np.array([_rmse(g) for g in groups])
  failed = np.array([bool(g.failed) for g in groups])
  ungated = np.array([g.gated is False for g in groups])
  ok = ~np.isnan(r) & (n > 0)
  for mask, color, label in ((ok & ~failed & ~ungated, CANDIDATE_COLOR, "gated, passed"),
                             (ok & ungated & ~failed, "#9db7d9", "too small to gate"),
                             (ok & failed, FAIL_COLOR, "failed threshold")):
    if mask.any():
      left.scatter(n[mask], r[mask], s=10, color=color, alpha=0.7, label=label)
  left.set_xscale("log")
  left.set_xlabel("eval rows in the group (log scale)")
  left.set_ylabel("RMSE (label units)")
  overall = content.overall.candidate.get(RMSE)
  if overall is not None:
    left.axhline(overall, color=CANDIDATE_COLOR, lw=1, ls="--", label=f"overall {overall:.3f}")
  left.legend(fontsize=8)
  left.set_title(f"{len(groups)} groups ({int((~ok).sum())} without eval rows)", fontsize=10)
  left.grid(alpha=0.3)
  order = [i for i in np.argsort(-np.nan_to_num(r, nan=-1.0)) if ok[i]]
  shown = order[:WORST_N] + [i for i in order[WORST_N:] if failed[i]][:WORST_N]
  shown = shown[::-1]
  right.barh(range(len(shown)), [r[i] for i in shown],
             color=[FAIL_COLOR if failed[i] else CANDIDATE_COLOR for i in shown])
  right.set_yticks(range(len(shown)), [f"{groups[i].label[:28]} (n={n[i]:.0f})" for i in shown],
                   fontsize=7)
  right.set_xlabel("RMSE (label units)")
  right.set_title(f"worst {min(WORST_N, len(order))} groups and failing groups", fontsize=10)
  verdict = {True: "BLESSED", False: "NOT blessed", None: "no blessing"}[content.blessed]
  fig.suptitle(f"{content.title}: RMSE per group - {verdict}")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def _bars(content: ReportContent, groups, path: str) -> str:
  x = np.arange(len(groups))
  cand = [_nan(g.candidate.get(RMSE)) for g in groups]
  base = [_nan(g.baseline.get(RMSE)) for g in groups]
  has_base = any(not np.isnan(b) for b in base)
  width = 0.4 if has_base else 0.6
  fig, ax = plt.subplots(figsize=(min(max(8.0, 0.7 * len(groups) + 4.5), 3 * MAX_WIDTH_IN),
                                  4.2), dpi=110)
  if has_base:
    ax.bar(x - width / 2, base, width, color=BASELINE_COLOR)
  colors = [FAIL_COLOR if g.failed else CANDIDATE_COLOR for g in groups]
  bars = ax.bar(x + (width / 2 if has_base else 0), cand, width, color=colors)
  for bar, g in zip(bars, groups):
    if g.gated is False:
      bar.set_hatch("//")
      bar.set_alpha(0.6)
  overall = content.overall.candidate.get(RMSE)
  if overall is not None:
    ax.axhline(overall, color=CANDIDATE_COLOR, lw=1, ls="--", label=f"candidate overall {overall:.3f}")
  base_overall = content.overall.baseline.get(RMSE)
  if base_overall is not None:
    ax.axhline(base_overall, color="#777777", lw=1, ls=":",
               label=f"baseline overall {base_overall:.3f}")
  ax.set_xticks(x, [f"{g.label.split()[-1]}\nn={g.candidate.get('example_count', 0):.0f}"
                    for g in groups])
  ax.set_xlabel("group (test rows)")
  ax.set_ylabel("RMSE (label units)")
  verdict = {True: "BLESSED", False: "NOT blessed", None: "no blessing"}[content.blessed]
  ax.set_title(f"{content.title}: RMSE per group - {verdict}")
  handles, _ = ax.get_legend_handles_labels()
  handles = [h for h in handles if not isinstance(h, BarContainer)]  # bars: explicit patches
  patches = [Patch(color=CANDIDATE_COLOR, label="candidate")]
  if has_base:
    patches.insert(0, Patch(color=BASELINE_COLOR, label="baseline (last blessed)"))
  if any(g.failed for g in groups):
    patches.append(Patch(color=FAIL_COLOR, label="candidate, failed threshold"))
  if any(g.gated is False for g in groups):
    patches.append(Patch(facecolor=CANDIDATE_COLOR, alpha=0.6, hatch="//",
                         label="candidate, too small to gate"))
  ax.legend(handles=patches + handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path
