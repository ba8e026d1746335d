"""Flows conditioned on several context variables (issue 32's vector conditions): a non-resonant region's
templates need p(x | H_T, MET), not p(x | mjj)."""

import numpy as np
import pytest

from slidescan.density.batched import FlowTask, train_flows
from slidescan.density.flow_settings import FlowSettings
from slidescan.density.flows import load_flow, train_flow
from slidescan.io import write_tables

SETTINGS = {"transforms": 3, "hidden": [32, 32], "epochs": 12, "batch_size": 256, "learning_rate": 0.003,
            "n_best": 2}


def sample(n, seed):
    """x follows both context variables: x1 ~ N(c1, 0.2), x2 ~ N(-c2, 0.2)."""
    g = np.random.default_rng(seed)
    c = g.uniform(0.0, 1.0, (n, 2))
    x = np.stack([g.normal(c[:, 0], 0.2), g.normal(-c[:, 1], 0.2)], axis=1)
    return x, c


def test_a_flow_learns_a_density_that_follows_two_context_variables_and_survives_its_file(tmp_path):
    settings = FlowSettings.from_config(SETTINGS)
    x, c = sample(8000, 1)
    flow = train_flow(x, c, settings, seed=3, log=lambda s: None)
    assert flow.pre.n_condition == 2
    # at fixed conditions its samples sit where the density is
    at = np.tile([[0.2, 0.8]], (3000, 1))
    drawn = flow.sample(at, seed=4)
    assert abs(drawn[:, 0].mean() - 0.2) < 0.06 and abs(drawn[:, 1].mean() + 0.8) < 0.06, drawn.mean(0)
    # on held-out events it beats a flow that sees only the first variable (it cannot know x2's shift)
    held, held_c = sample(3000, 2)
    one = train_flow(x, c[:, 0], settings, seed=3, log=lambda s: None)
    assert flow.log_prob(held, held_c).mean() > one.log_prob(held, held_c[:, 0]).mean() + 0.3
    # written like a model's flow and read back, it is the same density
    path = tmp_path / "flow.h5"
    write_tables(path, {}, attrs=flow.attrs(), arrays=flow.arrays())
    again = load_flow(path)
    np.testing.assert_allclose(again.log_prob(held[:200], held_c[:200]), flow.log_prob(held[:200], held_c[:200]),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"flow condition: expected 2 value\(s\) per event"):
        flow.log_prob(held[:10], held_c[:10, 0])


def test_batched_flows_with_vector_conditions_are_each_the_flow_trained_alone():
    settings = FlowSettings.from_config({**SETTINGS, "epochs": 3})
    data = [sample(n, s) for n, s in ((2500, 5), (1800, 6))]
    together = train_flows([FlowTask(x, c, 20 + i, log=lambda s: None) for i, (x, c) in enumerate(data)], settings)
    for i, (x, c) in enumerate(data):
        alone = train_flow(x, c, settings, 20 + i, log=lambda s: None)
        np.testing.assert_allclose(together[i].history["val_loss"], alone.history["val_loss"], rtol=2e-5)
        np.testing.assert_allclose(together[i].log_prob(x[:300], c[:300]), alone.log_prob(x[:300], c[:300]),
                                   atol=2e-3)
