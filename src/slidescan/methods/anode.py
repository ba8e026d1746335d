"""ANODE (arXiv:2001.04990): the density ratio of the SR data and of the background, no classifier.

score(x, m) = log p_data(x | m) - log p_bkg(x | m). p_bkg is the sideband flow interpolated into
the SR (the ``sideband_flow`` model, shared with CATHODE); p_data is a flow fitted on the SR data
of the other folds, so every event is scored by a density that never saw it. The published result
on LHCO R&D (max SIC about 6.5 where CATHODE reaches about 14) comes from the ratio of two
separately fitted densities: their errors do not cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..density.flow_settings import FLOW_EXECUTION_SCHEMA, FLOW_TRAINING_SCHEMA, PUBLISHED, FlowTraining
from ..settings import section_schema
from . import register
from .density_scores import SCORE_MJJ_SCHEMA, SRDensityScore


@dataclass(frozen=True)
class AnodeSettings(FlowTraining):
    """The SR flows of ANODE (one per fold and member); defaults: the published MAF (15 MADE blocks of 128)."""

    section = "anode"
    schema = section_schema(f"""
description: ANODE's SR density p_data(x | m), fitted per fold on the SR data of the other folds
properties:
{FLOW_TRAINING_SCHEMA % PUBLISHED}
  members: {{type: integer, minimum: 1, default: 1, description: "SR flows per fold (seeds), their densities averaged"}}
{SCORE_MJJ_SCHEMA}
{FLOW_EXECUTION_SCHEMA}
""")

    members: int
    score_mjj: str
    cuda_graphs: bool
    device: str
    threads: int


class Anode(SRDensityScore):
    name = "anode"
    description = "log p_SR data(x|m) - log p_sideband flow(x|m) (ANODE)"
    settings_type = AnodeSettings


register(Anode())
