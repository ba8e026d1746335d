"""The settings of the flows (no torch here: the DAG and the schema need them, not the training)."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings, section_schema

# the training keys every flow shares (the sideband flow, ANODE's SR flows, R-ANODE's signal flows);
# each section declares its own defaults
FLOW_TRAINING_SCHEMA = """
  transforms: {type: integer, minimum: 1, default: %(transforms)s, description: "MADE blocks"}
  hidden: {type: array, items: {type: integer, minimum: 1}, default: %(hidden)s, description: "hidden layers of each MADE block"}
  epochs: {type: integer, minimum: 1, default: %(epochs)s}
  batch_size: {type: integer, minimum: 1, default: %(batch_size)s}
  learning_rate: {type: number, exclusiveMinimum: 0, default: %(learning_rate)s}
  lr_schedule: {enum: [constant, cosine], default: constant, description: "cosine: decay the rate to 0 over the training (per step)"}
  validation_fraction: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2}
  n_best: {type: integer, minimum: 1, default: %(n_best)s, description: "an equal-weight mixture of the n_best epochs of lowest validation loss"}
  preprocessing: {enum: [logit, log_logit], default: logit, description: "logit: a clamped logit of a min-max scaling, standardised; log_logit: the same after log x of each feature strictly positive in training (heavy-tailed tau_N^beta, docs/features.md)"}
"""
FLOW_EXECUTION_SCHEMA = """
  cuda_graphs: {type: boolean, default: true, description: "on CUDA, replay each training step as one captured CUDA graph"}
  device: {type: string, default: auto, description: "auto (every visible GPU, else the CPU), cpu, cuda (every visible GPU), cuda:N, or a comma-separated list (cuda:0,cuda:2); a job with several devices trains one batched model per device at once (docs/cluster.md)"}
  threads: {type: integer, minimum: 1, default: 1}
"""
PUBLISHED = {"transforms": 15, "hidden": [128], "epochs": 100, "batch_size": 256, "learning_rate": 0.0001, "n_best": 10}


@dataclass(frozen=True)
class FlowTraining(Settings):
    """The training settings every flow has, in the order of the sideband flow's identity (a base class:
    each section adds its own keys and declares its schema with its defaults)."""

    transforms: int
    hidden: list[int]
    epochs: int
    batch_size: int
    learning_rate: float
    # "cosine": decay the learning rate to zero over the training (per step); lets large batches
    # with a larger rate reach the published setting's likelihood in fewer epochs (docs/benchmarks.md)
    lr_schedule: str
    validation_fraction: float
    # mixture of the n_best epochs of lowest validation loss (CATHODE: 10); 1 is the best epoch alone
    n_best: int
    # logit, or log_logit: log x of each feature strictly positive in training first (flows.Preprocessor)
    preprocessing: str

    # keys added after results existed, left out of identities at these values (settings.identity_values)
    late_defaults = {"preprocessing": "logit"}


@dataclass(frozen=True)
class FlowSettings(FlowTraining):
    """The sideband flow's settings (section ``flow``); defaults are the published CATHODE ones."""

    section = "flow"
    schema = section_schema(f"""
description: >-
  the conditional normalizing flow (zuko MAF) p(features | mjj) of each window's sidebands and pseudo-experiment
  (CATHODE's background model, shared by every method that needs it); defaults are the published setting
  (arXiv:2109.00546); also the settings of the simulated-background flow
properties:
{FLOW_TRAINING_SCHEMA % PUBLISHED}
  max_train_events: {{type: integer, minimum: 0, default: 0, description: "train on a random subset of at most this many sideband events; 0 = all"}}
  oversampling: {{type: number, exclusiveMinimum: 0, default: 4.0, description: "SR samples per SR data event (weighted 1/oversampling)"}}
{FLOW_EXECUTION_SCHEMA}
""")

    # train on at most this many sideband events (a random subset); 0 uses all
    max_train_events: int
    # SR samples per SR data event; the samples get weight 1/oversampling
    oversampling: float
    # on CUDA, replay each training step as one captured CUDA graph (slidescan.cudagraph)
    cuda_graphs: bool
    device: str
    threads: int


