"""Many flows of one architecture trained as one batched model: each its own data, split, epochs, checkpoint.

A flow of a few thousand parameters leaves a GPU idle (its epoch time does not change with four other
jobs beside it), and a scan needs hundreds of them: one per window, injection and seed. Here the
members' parameters are stacked and one step evaluates every member's batch at once, with
``torch.func.vmap`` over the very zuko flow that ``flows.train_flow`` trains, so a member computes
the function of the flow alone. Each member keeps everything of its own: its events, preprocessing,
validation split and shuffles (seeded by its seed as alone), its number of steps per epoch (a
member whose epoch is over sits the remaining steps out: its batch is empty and its optimiser step
masked), its learning-rate schedule, its kept epochs and history, and its checkpoint, written in
the single flow's format with the single flow's fingerprint, so a member rerun alone resumes from
it and vice versa. A member thus equals the same flow trained alone up to floating-point rounding.
Adam is applied per member (``MaskedAdam``): an optimiser over the stacked tensors would move a
member that sits a step out.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import checkpoint as ckpt
from .. import joblog
from ..backends.nn.ensemble import member_generator
from ..cudagraph import GraphedStep, use_graphs
from ..devices import GLOBAL_RNG, resolve_device
from ..io import content_hash
from ..settings import EXECUTION_ONLY, identity_values
from .flows import Preprocessor, TrainedFlow, build_flow, checked_training_set, event_weights, weighted_mean

BETAS, EPS = (0.9, 0.999), 1e-8


@dataclass
class FlowTask:
    """One member: its events, seed, checkpoint and log (as ``train_flow`` takes them)."""

    x: np.ndarray
    mjj: np.ndarray
    seed: int
    checkpoint: object = None  # path or None
    log: Callable[[str], None] = print
    what: str = "flow"
    weight: np.ndarray | None = None  # per-event weights (train_flow's ``weight``)


class MaskedAdam:
    """Adam on stacked (members, ...) parameters, stepping only the members marked active.

    The arithmetic of ``torch.optim.Adam`` (single-tensor form), with a step count, bias corrections
    and a learning rate per member; every operation is on device tensors, so a CUDA graph can replay it.
    """

    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor):
        self.params, self.lr = params, lr  # lr: (members,) on the device
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = torch.zeros(len(lr), device=lr.device)

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], active: torch.Tensor) -> None:
        self.steps += active.to(self.steps.dtype)
        steps = self.steps.clamp(min=1)
        bias1 = 1 - BETAS[0] ** steps
        bias2_sqrt = torch.sqrt(1 - BETAS[1] ** steps)
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            shape = (-1,) + (1,) * (p.dim() - 1)
            on = active.view(shape)
            m.copy_(torch.where(on, torch.lerp(m, g, 1 - BETAS[0]), m))
            v.copy_(torch.where(on, v * BETAS[1] + (1 - BETAS[1]) * g * g, v))
            denom = (v.sqrt() / bias2_sqrt.view(shape)) + EPS
            p.copy_(torch.where(on, p - (self.lr / bias1).view(shape) * m / denom, p))


class _LogProb(torch.nn.Module):
    """``flow(c).log_prob(z)`` as one module call: under ``functional_call`` the flow's parameters are those
    of the member (a zuko flow returns a distribution that reads them later)."""

    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, c, z):
        return self.flow(c).log_prob(z)


def identity(task: FlowTask, settings) -> str:
    """The fingerprint ``train_flow`` gives the same flow (a plain flow, no mixture)."""
    cosine = settings.lr_schedule == "cosine"
    extendable = {} if cosine else {"epochs": None}
    weight = [] if task.weight is None else [np.asarray(task.weight, float)]
    return content_hash(np.asarray(task.x, float), np.asarray(task.mjj, float), *weight,
                        extra=(identity_values(settings) | dict.fromkeys(EXECUTION_ONLY) | extendable, task.seed))


def train_flows(tasks: list[FlowTask], settings) -> list[TrainedFlow]:
    """Train every task's flow (``flows.train_flow``'s result for each) as one batched model."""
    torch.set_num_threads(max(1, int(settings.threads)))
    device = resolve_device(settings.device)
    n_members, batch = len(tasks), settings.batch_size
    members = [_Member(t, settings) for t in tasks]
    # every member's events in one tensor, plus one padding row that empty batch slots point to
    z = torch.as_tensor(np.concatenate([m.z for m in members] + [np.zeros((1, members[0].z.shape[1]))]),
                        dtype=torch.float32, device=device)
    if len({m.c.shape[1] for m in members}) > 1:
        raise ValueError("train_flows: the flows of one batched model take conditions of one dimension, got "
                         f"{sorted({m.c.shape[1] for m in members})}")
    c = torch.as_tensor(np.concatenate([m.c for m in members] + [np.zeros((1, members[0].c.shape[1]))]),
                        dtype=torch.float32, device=device)
    pad = len(z) - 1
    offsets = np.cumsum([0] + [len(m.z) for m in members])
    # per-event weights when any member has them (the others weigh 1, the padding row 0)
    weighted = any(m.weight is not None for m in members)
    w = torch.as_tensor(np.concatenate([m.weight if m.weight is not None else np.ones(len(m.z)) for m in members]
                                       + [np.zeros(1)]), dtype=torch.float32, device=device) if weighted else None

    if n_members > 1:  # each member's epoch lines time the whole batch: the jobs table gives it its share
        for i, m in enumerate(members):
            m.task.log(joblog.batch(n_members, n_members, f"{m.task.what} {i + 1} of {n_members}", unit="flows"))
    modules = []
    with GLOBAL_RNG:  # another device's thread may seed torch's global generator too
        for m in members:  # each member initialised from its own seed, as train_flow initialises it
            torch.manual_seed(int(m.task.seed) % (2**63))
            modules.append(_LogProb(build_flow(m.z.shape[1], settings, m.c.shape[1])))
    base = modules[0]
    names = [n for n, _ in base.named_parameters()]
    params = [torch.stack([dict(mod.named_parameters())[n].detach() for mod in modules]).to(device).requires_grad_()
              for n in names]
    buffers = {n: torch.stack([dict(mod.named_buffers())[n] for mod in modules]).to(device)
               for n, _ in base.named_buffers()}
    key_order = {k: i for i, k in enumerate(base.flow.state_dict())}
    lr0 = float(settings.learning_rate)
    lr = torch.full((n_members,), lr0, device=device)
    optimizer = MaskedAdam(params, lr)
    for i, m in enumerate(members):
        m.attach(i, names, buffers, key_order)
        m.restore(params, optimizer, device)

    def log_prob(p, b, cc, zz):
        return torch.func.functional_call(base, (dict(zip(names, p)), b), (cc, zz))

    batched = torch.func.vmap(log_prob)

    def nll(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per member (rows of ``idx``), the NLL of each slot; padding slots count for nothing."""
        real = idx != pad
        return torch.where(real, -batched(params, buffers, c[idx], z[idx]), 0.0), real

    def train_step(idx: torch.Tensor) -> torch.Tensor:
        per_event, real = nll(idx)
        count = real.sum(1)
        if w is None:
            loss = per_event.sum(1) / count.clamp(min=1)
        else:
            loss = (per_event * w[idx]).sum(1) / w[idx].sum(1).clamp(min=1e-30)
        grads = torch.autograd.grad(loss.sum(), params)
        optimizer.step(grads, count > 0)
        return loss.detach()

    step = GraphedStep(train_step, use_graphs(settings.cuda_graphs, device))
    cosine = settings.lr_schedule == "cosine"
    steps_per_epoch = torch.tensor([m.steps_per_epoch for m in members], dtype=torch.float64)
    total_steps = torch.tensor([m.total_steps for m in members], dtype=torch.float64)
    val_rows = _padded([torch.as_tensor(m.val_idx + o) for m, o in zip(members, offsets)], pad).to(device)
    for epoch in range(min(m.start_epoch for m in members), settings.epochs):
        t0 = time.time()
        active = [m.start_epoch <= epoch for m in members]
        order = _padded([torch.as_tensor(m.order(epoch) + o) if on else torch.zeros(0, dtype=torch.long)
                         for m, o, on in zip(members, offsets, active)], pad, multiple=batch).to(device)
        totals = torch.zeros(n_members, device=device)
        for s in range(order.shape[1] // batch):
            if cosine:  # each member's closed-form rate at its own step (past its epoch it is masked anyway)
                done = epoch * steps_per_epoch + torch.clamp(torch.full_like(steps_per_epoch, s),
                                                             max=steps_per_epoch - 1)
                lr.copy_((0.5 * lr0 * (1 + torch.cos(math.pi * done / total_steps))).to(lr))
            totals += step(order[:, s * batch:(s + 1) * batch])
        with torch.no_grad():
            val = torch.cat([nll(val_rows[:, s:s + 16384])[0] for s in range(0, val_rows.shape[1], 16384)], dim=1)
        seconds = time.time() - t0
        for i, m in enumerate(members):
            if active[i]:
                weights = None if m.weight is None else w[val_rows[i, :len(m.val_idx)]]
                m.end_epoch(epoch, float(totals[i]), val[i, :len(m.val_idx)], params, seconds, weights)
                if m.task.checkpoint:
                    m.save(epoch + 1, params, optimizer)
    return [m.result() for m in members]


def _padded(rows: list[torch.Tensor], pad: int, multiple: int = 1) -> torch.Tensor:
    """Rows of different lengths as one (rows, longest rounded up to ``multiple``) tensor, filled with ``pad``."""
    longest = max([len(r) for r in rows] + [1])
    out = torch.full((len(rows), -(-longest // multiple) * multiple), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


class _Member:
    """One task's split, preprocessing, schedule, kept epochs, history and checkpoint state."""

    def __init__(self, task: FlowTask, settings):
        x, mjj = checked_training_set(task.x, task.mjj, task.what)
        self.task, self.settings = task, settings
        self.index, self.names, self.buffers, self.key_order = 0, [], {}, {}
        n = len(x)
        n_val = max(1, int(round(settings.validation_fraction * n)))
        if n - n_val < settings.batch_size:
            raise ValueError(f"{task.what} training: {n} events are too few for batch size {settings.batch_size}")
        order = np.random.default_rng(task.seed % (2**63)).permutation(n)
        self.train_idx, self.val_idx = order[n_val:], order[:n_val]
        self.pre = Preprocessor.fit(x[self.train_idx], mjj[self.train_idx],
                                    kind=getattr(settings, "preprocessing", "logit"))
        self.z, self.c = self.pre.forward(x), self.pre.condition(mjj)
        self.weight = event_weights(task.weight, len(x), task.what)
        self.n_features = x.shape[1]
        self.steps_per_epoch = -(-len(self.train_idx) // settings.batch_size)
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.ident = identity(task, settings)
        self.kept: list = []
        self.history = {"train_loss": [], "val_loss": []}
        self.start_epoch = 0

    def attach(self, index: int, names: list[str], buffers: dict, key_order: dict) -> None:
        """Its place in the batched model: its row of the stacked tensors, their names, the flow's key order."""
        self.index, self.names, self.buffers, self.key_order = index, names, buffers, key_order

    def order(self, epoch: int) -> np.ndarray:
        """The member's shuffled training rows of ``epoch``: the permutation ``train_flow`` draws."""
        perm = torch.randperm(len(self.train_idx), generator=member_generator(self.task.seed * 1_000_003 + epoch))
        return self.train_idx[perm.numpy()]

    def restore(self, params, optimizer: MaskedAdam, device) -> None:
        """Resume from the member's checkpoint (written by this engine or by ``train_flow``)."""
        state = ckpt.load(self.task.checkpoint, self.ident, self.task.log, map_location=device)
        if state is None:
            return
        with torch.no_grad():
            for p, n in zip(params, self.names):
                p[self.index].copy_(state["state_dict"][n[len("flow."):]])
            opt = state["optimizer_states"][0]["state"]
            for k in range(len(params)):
                optimizer.exp_avg[k][self.index].copy_(opt[k]["exp_avg"])
                optimizer.exp_avg_sq[k][self.index].copy_(opt[k]["exp_avg_sq"])
            optimizer.steps[self.index] = float(opt[0]["step"])
        self.kept, self.history = state["slidescan"]["kept"], state["slidescan"]["history"]
        self.start_epoch = min(state["epoch"], self.settings.epochs)
        self.task.log(joblog.resumed(self.task.checkpoint, self.start_epoch, self.task.what))

    def end_epoch(self, epoch: int, total: float, nll: torch.Tensor, params, seconds: float,
                  weight: torch.Tensor | None = None) -> None:
        settings, what = self.settings, self.task.what
        train_nll = total / self.steps_per_epoch
        if not math.isfinite(train_nll):
            raise FloatingPointError(f"{what} training: training loss is {train_nll} at epoch {epoch + 1}; "
                                     "lower its learning_rate")
        infinite = int((~torch.isfinite(nll)).sum())
        val = weighted_mean(nll, weight) if not infinite else math.inf
        self.history["train_loss"].append(train_nll)
        self.history["val_loss"].append(val)
        if infinite:
            self.task.log(f"{what}: epoch {epoch + 1} not kept: {infinite} of {len(nll)} validation events have no "
                          "finite density")
        else:
            self.kept.append((val, epoch + 1, self.state_dict(params)))
            self.kept = sorted(self.kept, key=lambda item: item[0])[:settings.n_best]
        self.task.log(joblog.epoch(epoch + 1, settings.epochs, f"train nll {train_nll:.4f} val nll {val:.4f}",
                                   seconds, prefix="flow "))

    def state_dict(self, params) -> dict:
        """The member's parameters and buffers as its flow's own state dict, on the CPU."""
        out = {n[len("flow."):]: p[self.index].detach().cpu().clone() for n, p in zip(self.names, params)}
        out.update({n[len("flow."):]: b[self.index].detach().cpu().clone() for n, b in self.buffers.items()})
        return dict(sorted(out.items(), key=lambda kv: self.key_order[kv[0]]))

    def save(self, epoch: int, params, optimizer: MaskedAdam) -> None:
        """A checkpoint in the single flow's format (its Adam's state dict): ``train_flow`` resumes from it."""
        flow = build_flow(self.n_features, self.settings, self.pre.n_condition)
        flow.load_state_dict(self.state_dict(params))
        adam = torch.optim.Adam(flow.parameters(), lr=self.settings.learning_rate)
        for k, p in enumerate(flow.parameters()):
            adam.state[p] = {"step": optimizer.steps[self.index].detach().cpu().clone(),
                             "exp_avg": optimizer.exp_avg[k][self.index].detach().cpu().clone(),
                             "exp_avg_sq": optimizer.exp_avg_sq[k][self.index].detach().cpu().clone()}
        ckpt.save(self.task.checkpoint, self.ident, {"kept": self.kept, "history": self.history}, epoch,
                  flow.state_dict(), adam)

    def result(self) -> TrainedFlow:
        if not self.kept:
            raise FloatingPointError(f"{self.task.what} training: no epoch of {self.settings.epochs} gave every "
                                     "validation event a finite density; lower its learning_rate")
        best_epochs = [epoch for _, epoch, _ in self.kept]
        self.task.log(f"{self.task.what}: best validation nll {min(self.history['val_loss']):.4f}; mixture of epochs "
                      f"{best_epochs}")
        return TrainedFlow([copy.deepcopy(s) for _, _, s in self.kept], self.settings, self.pre, self.n_features,
                           self.history, best_epochs, np.sort(self.val_idx), self.ident)
