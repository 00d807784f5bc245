"""Empirical-Bayes refit of the multihead's group deltas (models/grouped_regression/pooling.py)."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import pooling
from models.grouped_regression import trainer


def _stats(phi, r, g, num_groups):
  phi1 = np.c_[phi, np.ones(len(r))]
  a = np.zeros((num_groups, phi1.shape[1], phi1.shape[1]))
  c = np.zeros((num_groups, phi1.shape[1]))
  s = np.zeros(num_groups)
  for k in range(num_groups):
    m = g == k
    a[k], c[k], s[k] = phi1[m].T @ phi1[m], phi1[m].T @ r[m], r[m] @ r[m]
  return pooling.GroupStats(a, c, s), phi1


def test_sse_from_sufficient_statistics_equals_direct_sum():
  rng = np.random.default_rng(0)
  phi, r, g = rng.normal(size=(50, 3)), rng.normal(size=50), rng.integers(0, 4, 50)
  st, phi1 = _stats(phi, r, g, 4)
  delta = rng.normal(size=(4, 4))
  direct = np.sum((r - np.einsum("ni,ni->n", phi1, delta[g])) ** 2)
  assert st.sse(delta) == pytest.approx(direct, rel=1e-10)


def test_ridge_deltas_solve_each_group_and_leave_empty_groups_at_zero():
  rng = np.random.default_rng(1)
  phi, r = rng.normal(size=(40, 2)), rng.normal(size=40)
  g = np.where(np.arange(40) < 25, 0, 1)           # group 2 has no rows
  st, phi1 = _stats(phi, r, g, 3)
  diag = np.array([2.0, 3.0, 0.5])
  delta = pooling.ridge_deltas(st, diag)
  m = g == 1
  expected = np.linalg.solve(phi1[m].T @ phi1[m] + np.diag(diag), phi1[m].T @ r[m])
  np.testing.assert_allclose(delta[1], expected, rtol=1e-10)
  np.testing.assert_array_equal(delta[2], 0.0)


def test_log_evidence_is_the_gaussian_marginal_likelihood():
  """With sigma^2 at its profiled value, log_evidence = sum_g log N(r_g; 0, s2 (I + Phi P^-1 Phi^T))."""
  rng = np.random.default_rng(2)
  phi, g = rng.normal(size=(30, 2)), rng.integers(0, 3, 30)
  r = rng.normal(size=30)
  st, phi1 = _stats(phi, r, g, 3)
  diag = np.array([1.5, 0.7, 4.0])
  value, delta = pooling.log_evidence(st, diag)
  resid = st.s.sum() - np.einsum("gi,gi->", delta, st.c)
  s2 = resid / len(r)
  direct = 0.0
  for k in range(3):
    m = g == k
    cov = s2 * (np.eye(m.sum()) + phi1[m] @ np.diag(1 / diag) @ phi1[m].T)
    direct += stats.multivariate_normal(np.zeros(m.sum()), cov).logpdf(r[m])
  # log_evidence drops the constant -n/2 log(2 pi)
  assert value - 0.5 * len(r) * np.log(2 * np.pi) == pytest.approx(direct, rel=1e-8)


def test_evidence_search_shrinks_when_groups_do_not_differ_and_not_when_they_do():
  rng = np.random.default_rng(3)
  n, groups = 2000, 40
  g = rng.integers(0, groups, n)
  phi = rng.normal(size=(n, 2))
  noise = rng.normal(0, 0.5, n)
  same, _ = _stats(phi, noise, g, groups)
  offsets = rng.normal(0, 1.0, groups)
  shifted, _ = _stats(phi, offsets[g] + noise, g, groups)
  lam_same, _ = pooling.search_strengths(same, trunk_dim=1)
  lam_shift, delta = pooling.search_strengths(shifted, trunk_dim=1)
  assert lam_same["intercept"] >= 1e3                   # no real group effect: (nearly) pooled
  assert lam_shift["intercept"] < 10                   # real offsets: groups keep their own
  np.testing.assert_allclose(delta[:, -1], offsets, atol=0.25)


def _zipf_data(seed=0):
  """Groups with very different sizes and their own intercepts; y depends on x the same way."""
  rng = np.random.default_rng(seed)
  sizes = np.maximum(2, (600 / np.arange(1, 31) ** 1.2).astype(int))
  g = np.repeat(np.arange(len(sizes)), sizes)
  x = rng.uniform(-1.5, 1.5, len(g))
  offsets = rng.normal(0, 1.0, len(sizes))
  y = 1.5 * x + offsets[g] + rng.normal(0, 0.3, len(g))
  return x.astype(np.float32), g, y, offsets


def test_trainer_fit_refits_multihead_deltas_and_improves_eval():
  x, g, y, offsets = _zipf_data()
  rng = np.random.default_rng(1)
  held = rng.random(len(y)) < 0.2
  spec = model_lib.ModelInputs(numeric=["x"], categorical={}, num_groups=int(g.max()) + 1,
                               label_mean=float(y.mean()), label_std=float(y.std()))
  hp = model_lib.Hparams(variant="multihead", trunk_units=(8,), learning_rate=0.01, seed=0)
  model = model_lib.build_model(spec, hp)
  feats = lambda m: {fk.numeric_key("x"): x[m], fk.GROUP_KEY: g[m]}
  train = trainer.dataset_from_arrays(feats(~held), y[~held], 32, seed=0)
  val = trainer.dataset_from_arrays(feats(held), y[held], 1024, shuffle=False)
  refit = trainer.dataset_from_arrays(feats(~held), y[~held], 1024, shuffle=False)
  history = trainer.fit(model, train, val, epochs=6, patience=6, verbose=0, refit_ds=refit)
  result = history.refit
  assert result.choice == "ridge"
  assert result.eval_rmse_after < result.eval_rmse_before
  assert result.train_rows == int((~held).sum()) and result.eval_rows == int(held.sum())
  # The refit heads carry the true group offsets (label units), big groups most exactly.
  groups = np.arange(spec.num_groups)
  level = model({fk.numeric_key("x"): np.zeros((len(groups), 1), np.float32),
                 fk.GROUP_KEY: groups.reshape(-1, 1)}).numpy().ravel()
  big = np.bincount(g[~held], minlength=len(groups)) >= 40
  centred = offsets - offsets[big].mean()
  np.testing.assert_allclose(level[big] - level[big].mean(), centred[big], atol=0.3)


def test_group_stats_are_the_same_sums_whatever_the_batching(monkeypatch):
  """The trainer reads in large batches and group_stats re-cuts them to its memory bound: the
  per-group sums must not depend on either (checked against a direct NumPy sum)."""
  x, g, y, _ = _zipf_data()
  spec = model_lib.ModelInputs(numeric=["x"], categorical={}, num_groups=int(g.max()) + 1,
                               label_mean=float(y.mean()), label_std=float(y.std()))
  model = model_lib.build_model(spec, model_lib.Hparams(variant="multihead", trunk_units=(4,)))
  feats = {fk.numeric_key("x"): x, fk.GROUP_KEY: g}
  ds = lambda batch: trainer.dataset_from_arrays(feats, y, batch, shuffle=False)
  head = pooling._head(model)   # pylint: disable=protected-access
  phi, _ = tf.keras.Model(model.inputs, list(head.input))(feats, training=False)
  scale, offset = pooling._label_scale(model)   # pylint: disable=protected-access
  r = (y - offset) / scale - np.c_[phi.numpy(), np.ones(len(y))] @ np.append(head.w.numpy(),
                                                                            head.b.numpy())
  want, _ = _stats(phi.numpy().astype(np.float64), r, g, spec.num_groups)
  p = want.a.shape[1]
  for batch, bound in ((32, pooling.OUTER_BYTES), (4096, pooling.OUTER_BYTES),
                       (4096, 8 * p * p * 7)):   # the last: 7 rows per step
    monkeypatch.setattr(pooling, "OUTER_BYTES", bound)
    got = pooling.group_stats(model, ds(batch))
    for field in ("a", "c", "s"):
      np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-4,
                                 atol=1e-3, err_msg=f"{field} (batch {batch}, bound {bound})")


def test_non_multihead_variants_are_left_alone():
  x, g, y, _ = _zipf_data()
  spec = model_lib.ModelInputs(numeric=["x"], categorical={}, num_groups=int(g.max()) + 1)
  model = model_lib.build_model(spec, model_lib.Hparams(variant="global", trunk_units=(4,)))
  ds = trainer.dataset_from_arrays({fk.numeric_key("x"): x, fk.GROUP_KEY: g}, y, 256,
                                   shuffle=False)
  assert pooling.refit_group_heads(model, ds, ds) is None


def test_gls_shared_head_is_pooled_ols_without_deltas_and_mixed_model_with_them():
  """The shared-head shift: with an infinite prior weight (no deltas) it is the pooled least
  squares fit; with random intercepts it recovers the fixed effects where the pooled fit, pulled
  by one huge group, does not."""
  rng = np.random.default_rng(3)
  sizes = np.r_[2000, np.full(40, 5)]               # one big group, many small ones
  g = np.repeat(np.arange(len(sizes)), sizes)
  x = rng.normal(size=(len(g), 1))
  u = np.r_[3.0, rng.normal(0, 0.5, len(sizes) - 1)]  # the big group sits far above the rest
  y = 2.0 * x[:, 0] + 1.0 + u[g] + rng.normal(0, 0.3, len(g))
  st, phi1 = _stats(x, y, g, len(sizes))            # residuals of a zero shared head
  shift, delta = pooling.gls_shared_and_deltas(st, np.full(2, 1e9))
  np.testing.assert_allclose(shift, np.linalg.lstsq(phi1, y, rcond=None)[0], rtol=1e-3)  # + 1-row prior
  assert np.abs(delta).max() < 1e-5
  shift, delta = pooling.gls_shared_and_deltas(st, np.array([1e9, 0.3 ** 2 / 0.5 ** 2]))
  assert shift[0] == pytest.approx(2.0, abs=0.05)
  assert shift[1] == pytest.approx(1.0, abs=0.3)    # pooled OLS says about 3.6
  assert delta[0, 1] == pytest.approx(3.0, abs=0.3)  # the big group keeps its own level
