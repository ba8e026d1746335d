"""Conditional density estimation: a zuko masked autoregressive flow p(x | mjj).

The background model of CATHODE, ANODE, R-ANODE and the flow likelihood: trained on sideband
events and sampled or evaluated inside the signal region (arXiv:2109.00546, 2001.04990). Features are mapped to an unbounded space by a clamped logit of a min-max scaling with a margin,
then standardised: a clamp, not the raw logit, so no event can become inf or NaN, and samples
mapped back always lie inside the (widened) range seen in training.

As in CATHODE, training keeps the ``n_best`` epochs of lowest validation loss and treats them as
an equal-weight mixture: samples are drawn from each in turn and ``log_prob`` averages densities.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import checkpoint as ckpt
from .. import joblog
from ..backends.nn.ensemble import member_generator
from ..cudagraph import GraphedStep, adam, keep_rate_on_device, set_learning_rate, use_graphs
from ..devices import GLOBAL_RNG, resolve_device
from ..io import content_hash
from ..settings import EXECUTION_ONLY, identity_values
from .flow_settings import FlowSettings


LOGIT_EPS = 1e-6
# the flows' ``preprocessing`` setting: logit (min-max scaling, clamped logit, standardisation), or log_logit (the
# same after log x of every feature that is strictly positive in training: heavy-tailed tau_N^beta, docs/features.md)
PREPROCESSING = ("logit", "log_logit")
# the margin of log_logit's log features, in units of their training range: events up to half the range beyond it
# keep their own z (at 0.05, one held-out event below the training range sat on the clamp at z = -30 with an NLL of
# 1e5, and the validation loss that selects epochs was that event's; docs/benchmarks.md)
LOG_MARGIN = 0.5


@dataclass
class Preprocessor:
    """x -> standardised clamped logit of a min-max scaling; the condition (mjj, or several context variables, one
    column each) -> standardised per column.

    ``log``: features taken as log x first (``log_logit``; ``lo`` and ``hi`` are then in log x). x below the
    widened range's lower edge is raised to it before the log, as the clamped logit treats it, so every
    event's z and log-Jacobian stay finite.
    """

    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    m_mean: float | np.ndarray  # a float for mjj alone (the flows written before vector conditions), else per column
    m_std: float | np.ndarray
    log: np.ndarray | None = None  # bool per feature; None: none (the ``logit`` preprocessing)

    @classmethod
    def fit(cls, x: np.ndarray, mjj: np.ndarray, margin: float = 0.05, kind: str = "logit") -> "Preprocessor":
        if kind not in PREPROCESSING:
            raise ValueError(f"flow preprocessing: expected one of {list(PREPROCESSING)}, got {kind!r}")
        log = x.min(0) > 0 if kind == "log_logit" else None
        y = np.where(log, np.log(np.where(log, x, 1.0)), x) if log is not None else x
        lo, hi = y.min(0), y.max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        if log is not None:  # log x has long tails on both sides: a wide margin keeps held-out events off the clamp
            margin = np.where(log, LOG_MARGIN, margin)
        mjj = np.asarray(mjj, float)
        if mjj.ndim == 1:
            m_mean, m_std = float(mjj.mean()), float(mjj.std() or 1.0)
        else:
            m_mean, m_std = mjj.mean(0), np.where(mjj.std(0) > 0, mjj.std(0), 1.0)
        pre = cls(lo - margin * span, hi + margin * span, np.zeros(x.shape[1]), np.ones(x.shape[1]), m_mean, m_std,
                  log)
        z = pre._logit(x)
        pre.mean, pre.std = z.mean(0), z.std(0) + 1e-8
        return pre

    @property
    def kind(self) -> str:
        return "log_logit" if self.log is not None else "logit"

    def _y(self, x: np.ndarray) -> np.ndarray:
        """x, with log x (raised to the range's lower edge) in the log features."""
        if self.log is None:
            return x
        return np.where(self.log, np.log(np.maximum(x, np.exp(np.where(self.log, self.lo, 0.0)))), x)

    def _u(self, x: np.ndarray) -> np.ndarray:
        return np.clip((self._y(x) - self.lo) / (self.hi - self.lo), LOGIT_EPS, 1 - LOGIT_EPS)

    def _logit(self, x: np.ndarray) -> np.ndarray:
        u = self._u(x)
        return np.log(u) - np.log1p(-u)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return (self._logit(x) - self.mean) / self.std

    def log_jacobian(self, x: np.ndarray) -> np.ndarray:
        """log |dz/dx| summed over features, for densities in the original feature space."""
        u = self._u(x)
        out = (-np.log(u) - np.log1p(-u) - np.log(self.hi - self.lo) - np.log(self.std)).sum(1)
        if self.log is not None:  # d log x / dx = 1 / x
            out = out - np.where(self.log, self._y(x), 0.0).sum(1)
        return out

    def inverse(self, z: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        y = self.lo + expit(z * self.std + self.mean) * (self.hi - self.lo)
        return np.where(self.log, np.exp(np.where(self.log, y, 0.0)), y) if self.log is not None else y

    @property
    def n_condition(self) -> int:
        """The condition's dimension: 1 for mjj, d for d context variables."""
        return int(np.size(self.m_mean))

    def condition(self, mjj: np.ndarray) -> np.ndarray:
        """The flow's condition, (n, d), from mjj (n,) or the context variables (n, d)."""
        c = np.asarray(mjj, float)
        c = c[:, None] if c.ndim == 1 else c
        if c.ndim != 2 or c.shape[1] != self.n_condition:
            raise ValueError(f"flow condition: expected {self.n_condition} value(s) per event, got shape "
                             f"{np.shape(mjj)}")
        return (c - self.m_mean) / self.m_std


def build_flow(n_features: int, settings: FlowSettings, n_condition: int = 1) -> torch.nn.Module:
    """A MAF of ``n_features`` conditioned on ``n_condition`` values (mjj; or the context variables of a region)."""
    import zuko

    # its random init draws from torch's global generator: never inside another device thread's seeded section
    with GLOBAL_RNG:
        flow = zuko.flows.MAF(n_features, n_condition, transforms=settings.transforms,
                              hidden_features=list(settings.hidden))
    # Start every transform with scale 1 (zero the scale outputs of each MADE; the shifts keep their random
    # init, so gradients flow from the first step). zuko's random init lets each affine layer scale by up
    # to e^6.9: stacked 15 deep (the published setting), some ordinary events started at an NLL of 1e27
    # and the training never recovered (benchmark seed 1, docs/benchmarks.md).
    with torch.no_grad():
        for transform in flow.transform.transforms:
            last = transform.hyper[-1]
            n_params = last.weight.shape[0] // n_features  # (shift, scale) per feature, interleaved
            last.weight[n_params - 1::n_params].zero_()
            last.bias[n_params - 1::n_params].zero_()
    return flow


class TrainedFlow:
    """An equal-weight mixture of the kept epochs' flows, in the original feature space.

    A flow trained as the signal component of a mixture with a fixed background density
    (``train_flow(background=...)``) also carries the fitted signal fraction of each kept epoch.
    """

    def __init__(self, states: list[dict], settings, pre: Preprocessor, n_features: int,
                 history: dict, best_epochs: list[int], validation_index: np.ndarray, fingerprint: str = "",
                 signal_fractions: list[float] | None = None, morph_of: str = ""):
        self.settings, self.pre, self.history, self.best_epochs = settings, pre, history, best_epochs
        # a morph (``train_flow(base=...)``): the fingerprint of the flow whose space it maps onto; its own base is
        # that flow, not a standard normal, so only :meth:`morph` means anything
        self.morph_of = morph_of
        self.n_features = n_features
        # events held out of training: the honest sample for closure tests
        self.validation_index = validation_index
        # what the flow was trained on and with (the checkpoint's fingerprint)
        self.fingerprint = fingerprint
        self.signal_fractions = signal_fractions
        # sampling runs where training ran: on a GPU it is seconds, on one CPU core about a minute
        self.device = resolve_device(settings.device)
        self.states = states
        self.flows = []
        for state in states:
            flow = build_flow(n_features, settings, pre.n_condition)
            flow.load_state_dict(state)
            self.flows.append(flow.to(self.device).eval())

    @property
    def best_val_loss(self) -> float:
        return float(min(self.history["val_loss"]))

    @property
    def signal_fraction(self) -> float:
        """The mean fitted signal fraction of the kept epochs (mixture training only)."""
        return float(np.mean(self.signal_fractions)) if self.signal_fractions else float("nan")

    def _not_a_morph(self, what: str):
        if self.morph_of:
            raise TypeError(f"{what}: this flow is a morph onto another flow (train_flow(base=...)), not a density of "
                            "its own; use morph()")

    @torch.no_grad()
    def morph(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Events of the base flow's sample moved onto the data the morph was trained on: M^-1(x | mjj), by the
        kept epoch of lowest validation loss (a mixture of maps is not a map)."""
        if not self.morph_of:
            raise TypeError("morph(): this flow was not trained as a morph (train_flow(base=...))")
        c = torch.as_tensor(self.pre.condition(np.asarray(mjj, float)), dtype=torch.float32, device=self.device)
        z = torch.as_tensor(self.pre.forward(np.asarray(x, float)), dtype=torch.float32, device=self.device)
        return self.pre.inverse(self.flows[0](c).transform.inv(z).double().cpu().numpy())

    @torch.no_grad()
    def log_prob(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        self._not_a_morph("log_prob")
        out = np.empty(len(x))
        for start in range(0, len(x), 262_144):  # bounded memory on a window's million events
            xs, ms = x[start:start + 262_144], mjj[start:start + 262_144]
            z = torch.as_tensor(self.pre.forward(xs), dtype=torch.float32, device=self.device)
            c = torch.as_tensor(self.pre.condition(ms), dtype=torch.float32, device=self.device)
            per_flow = torch.stack([flow(c).log_prob(z) for flow in self.flows])
            mixture = torch.logsumexp(per_flow, 0) - math.log(len(self.flows))
            out[start:start + len(xs)] = mixture.double().cpu().numpy() + self.pre.log_jacobian(xs)
        return out

    @torch.no_grad()
    def sample(self, mjj: np.ndarray, seed: int) -> np.ndarray:
        """One sample of x for each mjj value; the mixture's members take turns."""
        self._not_a_morph("sample")
        mjj = np.asarray(mjj, float)
        c = torch.as_tensor(self.pre.condition(mjj), dtype=torch.float32, device=self.device)
        z = torch.empty(len(mjj), len(self.pre.lo), device=self.device)
        # GLOBAL_RNG: another device's thread of the job may seed torch's global generators too
        with GLOBAL_RNG, torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(int(seed) % (2**63))
            for i, flow in enumerate(self.flows):
                rows = torch.arange(i, len(mjj), len(self.flows), device=self.device)
                for start in range(0, len(rows), 100_000):
                    chunk = rows[start:start + 100_000]
                    z[chunk] = flow(c[chunk]).sample()
        return self.pre.inverse(z.double().cpu().numpy())

    @torch.no_grad()
    def to_base(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """The image of ``x`` given ``mjj`` in the base space (standard normal) of the mixture's first flow: the
        bijection that FETA composes with another flow's inverse (a mixture of flows is not one)."""
        z = torch.as_tensor(self.pre.forward(np.asarray(x, float)), dtype=torch.float32, device=self.device)
        c = torch.as_tensor(self.pre.condition(np.asarray(mjj, float)), dtype=torch.float32, device=self.device)
        return self.flows[0](c).transform(z).double().cpu().numpy()

    def latent(self, x: np.ndarray, condition: np.ndarray) -> np.ndarray:
        """The events' latent coordinates: their image in the base space (standard normal for the data the flow
        describes, at every value of the condition), by the kept epoch of lowest validation loss. A classifier in
        this space cannot learn the condition's dependence, so cutting on it does not sculpt mjj (LaCATHODE,
        arXiv:2210.14924)."""
        self._not_a_morph("latent")
        return self.to_base(x, condition)

    @torch.no_grad()
    def from_base(self, u: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_base`: the events whose base-space image given ``mjj`` is ``u``."""
        c = torch.as_tensor(self.pre.condition(np.asarray(mjj, float)), dtype=torch.float32, device=self.device)
        z = self.flows[0](c).transform.inv(torch.as_tensor(np.asarray(u, float), dtype=torch.float32,
                                                            device=self.device))
        return self.pre.inverse(z.double().cpu().numpy())

    def arrays(self) -> dict[str, np.ndarray]:
        """The flow as arrays (for a model's HDF5 output): no pickle, so reading it runs no code."""
        out = {f"pre_{k}": np.atleast_1d(np.asarray(getattr(self.pre, k), float))
               for k in ("lo", "hi", "mean", "std", "m_mean", "m_std")}
        if self.pre.log is not None:  # log_logit only: a default flow's arrays are those it always had
            out["pre_log"] = self.pre.log.astype(np.int8)
        for i, state in enumerate(self.states):
            for key, value in state.items():
                out[f"flow{i}/{key}"] = value.numpy()
        return out

    def attrs(self) -> dict:
        out = {"flow_transforms": int(self.settings.transforms), "flow_hidden": ",".join(map(str, self.settings.hidden)),
               "flow_n_features": int(self.n_features), "flow_members": len(self.states),
               "best_epochs": ",".join(map(str, self.best_epochs)), "fingerprint": self.fingerprint}
        if self.pre.log is not None:  # log_logit only: a default flow's attributes are those it always had
            out["flow_preprocessing"] = self.pre.kind
        if self.morph_of:
            out["flow_morph_of"] = self.morph_of
        return out


@dataclass(frozen=True)
class _Architecture:
    """What ``build_flow`` needs to rebuild a saved flow."""

    transforms: int
    hidden: list[int]
    device: str


def load_flow(path, device: str = "auto") -> TrainedFlow:
    """The flow a model stored with :meth:`TrainedFlow.arrays` (its history and validation events are not kept)."""
    from ..io import read_arrays, read_attrs

    attrs = read_attrs(path)
    if "flow_members" not in attrs:
        raise ValueError(f"{path}: holds no flow (no flow_members attribute); it was not written by a flow model")
    arrays = read_arrays(path)
    m_mean, m_std = arrays["pre_m_mean"], arrays["pre_m_std"]
    if len(m_mean) == 1:  # mjj alone
        m_mean, m_std = float(m_mean[0]), float(m_std[0])
    pre = Preprocessor(arrays["pre_lo"], arrays["pre_hi"], arrays["pre_mean"], arrays["pre_std"], m_mean, m_std,
                       arrays["pre_log"].astype(bool) if "pre_log" in arrays else None)
    states = []
    for i in range(int(attrs["flow_members"])):
        prefix = f"flow{i}/"
        states.append({k[len(prefix):]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix)})
    arch = _Architecture(int(attrs["flow_transforms"]), [int(h) for h in str(attrs["flow_hidden"]).split(",")], device)
    return TrainedFlow(states, arch, pre, int(attrs["flow_n_features"]), {"val_loss": [], "train_loss": []},
                       [int(e) for e in str(attrs["best_epochs"]).split(",")], np.array([], int),
                       str(attrs.get("fingerprint", "")), morph_of=str(attrs.get("flow_morph_of", "")))


def checked_training_set(x, condition, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (events, features) and its condition: mjj (events,) or context variables (events, d), finite."""
    x, condition = np.asarray(x, float), np.asarray(condition, float)
    if x.ndim != 2 or condition.ndim not in (1, 2) or len(x) != len(condition):
        raise ValueError(f"{what} training: x must be (events, features) with one mjj (or one row of context "
                         f"variables) per event, got {x.shape}, {condition.shape}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(condition)):
        raise ValueError(f"{what} training: features or mjj contain inf or NaN")
    return x, condition


def train_flow(x: np.ndarray, mjj: np.ndarray, settings, seed: int,
               checkpoint: str | os.PathLike | None = None, log: Callable[[str], None] = print,
               background: np.ndarray | None = None, signal_fraction: float = 0.01,
               what: str = "flow", weight: np.ndarray | None = None, base: TrainedFlow | None = None) -> TrainedFlow:
    """Fit p(x | mjj) by maximum likelihood, keeping the ``n_best`` epochs of lowest validation loss. ``mjj`` may be
    a condition of several columns (events, d), e.g. the context variables of a non-resonant region.

    With ``background`` (the log density of each event under a fixed background model, in the
    space of ``x``), the flow is the signal component of ``w p_flow + (1 - w) p_background`` and the
    fraction ``w`` (starting at ``signal_fraction``) is fitted with it (R-ANODE). Per-epoch
    checkpoints (Lightning layout plus our own state) let a killed job resume exactly.

    With ``weight`` (per-event weights, >= 0) the training and validation losses are weighted means: the
    maximum-likelihood flow of the weighted sample.

    With ``base`` (a trained flow, e.g. of a simulation), the flow trained is a *morph* M onto it (FETA,
    arXiv:2212.11285): log p(x | m) = log p_base(M(z | m) | m) + log |dM/dz| + log |dz/dx|, in the base's
    preprocessed space z, with the base frozen (its kept epoch of lowest validation loss). M starts as the identity,
    so a base that already describes ``x`` needs no change and a small mismodelling a small one; M^-1 then moves the
    base's own events onto ``x`` (``TrainedFlow.morph``). The base has no interpolation to do where it was trained
    (a simulation is known in the SR), so only the morph interpolates, and it only where the base is wrong.
    """
    torch.set_num_threads(max(1, int(settings.threads)))
    device = resolve_device(settings.device)
    x, mjj = checked_training_set(x, mjj, what)
    n = len(x)
    n_val = max(1, int(round(settings.validation_fraction * n)))
    if n - n_val < settings.batch_size:
        raise ValueError(f"{what} training: {n} events are too few for batch size {settings.batch_size}")
    order = np.random.default_rng(seed % (2**63)).permutation(n)
    train_idx, val_idx = order[n_val:], order[:n_val]
    if base is not None and background is not None:
        raise ValueError(f"{what} training: a morph (base) cannot also be a mixture with a background")
    pre = base.pre if base is not None else \
        Preprocessor.fit(x[train_idx], mjj[train_idx], kind=getattr(settings, "preprocessing", "logit"))
    z = torch.as_tensor(pre.forward(x), dtype=torch.float32, device=device)
    c = torch.as_tensor(pre.condition(mjj), dtype=torch.float32, device=device)
    z_train, c_train = z[train_idx], c[train_idx]
    z_val, c_val = z[val_idx], c[val_idx]
    weight = event_weights(weight, n, what)
    if weight is not None:
        w = torch.as_tensor(weight, dtype=torch.float32, device=device)
        w_train, w_val = w[train_idx], w[val_idx]
    mixture = background is not None
    if mixture:
        # the fixed background in the flow's space: log p_b(x) - log |dz/dx|
        b = torch.as_tensor(np.asarray(background, float) - pre.log_jacobian(x), dtype=torch.float32, device=device)
        b_train, b_val = b[train_idx], b[val_idx]

    with GLOBAL_RNG:  # another device's thread of the job may seed torch's global generator too
        torch.manual_seed(int(seed) % (2**63))
        flow = build_flow(x.shape[1], settings, pre.n_condition).to(device)
    if base is not None:
        with torch.no_grad():  # the identity: every MADE's last layer (shifts and scales) zero
            for transform in flow.transform.transforms:
                transform.hyper[-1].weight.zero_()
                transform.hyper[-1].bias.zero_()
        base_flow = copy.deepcopy(base.flows[0]).to(device).eval().requires_grad_(False)
    params = list(flow.parameters())
    if mixture:
        logit_w = torch.nn.Parameter(torch.tensor(math.log(signal_fraction / (1 - signal_fraction)), device=device))
        params.append(logit_w)
    graphed = use_graphs(settings.cuda_graphs, device)
    optimizer = adam(params, settings.learning_rate, device, graphed)
    n_train = len(train_idx)
    steps_per_epoch = -(-n_train // settings.batch_size)
    cosine = settings.lr_schedule == "cosine"
    total_steps = settings.epochs * steps_per_epoch
    history = {"train_loss": [], "val_loss": []}
    kept: list[tuple[float, int, dict]] = []  # (val loss, epoch, state on the CPU)
    start_epoch = 0
    # a cosine schedule depends on the number of epochs; a constant rate may be extended from a checkpoint
    extendable = {} if cosine else {"epochs": None}
    identity = (identity_values(settings) | dict.fromkeys(EXECUTION_ONLY) | extendable, seed)
    arrays = [x, mjj] if weight is None else [x, mjj, weight]
    if mixture:
        identity, arrays = (identity, "mixture", float(signal_fraction)), arrays + [np.asarray(background, float)]
    if base is not None:
        identity = (identity, "morph", base.fingerprint)
    ident = content_hash(*arrays, extra=identity)
    state = ckpt.load(checkpoint, ident, log, map_location=device)
    if state is not None:
        flow.load_state_dict(state["state_dict"])
        if mixture:
            with torch.no_grad():
                logit_w.copy_(state["slidescan"]["logit_w"])
        optimizer.load_state_dict(state["optimizer_states"][0])
        if graphed:
            keep_rate_on_device(optimizer, device)
        kept, history = state["slidescan"]["kept"], state["slidescan"]["history"]
        start_epoch = min(state["epoch"], settings.epochs)
        log(joblog.resumed(checkpoint, start_epoch, what))

    def nll(c_batch, z_batch, b_batch=None):
        if base is not None:
            u, ladj = flow(c_batch).transform.call_and_ladj(z_batch)
            return -(base_flow(c_batch).log_prob(u) + ladj)
        log_q = flow(c_batch).log_prob(z_batch)
        if not mixture:
            return -log_q
        return -torch.logaddexp(torch.nn.functional.logsigmoid(logit_w) + log_q,
                                torch.nn.functional.logsigmoid(-logit_w) + b_batch)

    def train_step(idx: torch.Tensor) -> torch.Tensor:
        per_event = nll(c_train[idx], z_train[idx], b_train[idx] if mixture else None)
        loss = per_event.mean() if weight is None else (per_event * w_train[idx]).sum() / w_train[idx].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    step = GraphedStep(train_step, graphed)
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.time()
        perm = torch.randperm(n_train, generator=member_generator(seed * 1_000_003 + epoch)).to(device)
        flow.train()
        total, n_batches = torch.zeros((), device=device), 0
        for start in range(0, n_train, settings.batch_size):
            if cosine:  # closed form, set between steps: a captured step reads the rate from the device
                done = epoch * steps_per_epoch + n_batches
                set_learning_rate(optimizer, 0.5 * settings.learning_rate * (1 + math.cos(math.pi * done / total_steps)))
            total += step(perm[start:start + settings.batch_size])
            n_batches += 1
        flow.eval()
        with torch.no_grad():
            val_nll = torch.cat([nll(c_val[s:s + 65536], z_val[s:s + 65536], b_val[s:s + 65536] if mixture else None)
                                 for s in range(0, n_val, 65536)])
        infinite = int((~torch.isfinite(val_nll)).sum())
        val = weighted_mean(val_nll, None if weight is None else w_val) if not infinite else math.inf
        train_nll = float(total) / n_batches
        if not math.isfinite(train_nll):
            raise FloatingPointError(f"{what} training: training loss is {train_nll} at epoch {epoch + 1}; "
                                     "lower its learning_rate")
        history["train_loss"].append(train_nll)
        history["val_loss"].append(val)
        if infinite:
            # deep stacks can push a rare tail event past float32's range; such an epoch is no density
            log(f"{what}: epoch {epoch + 1} not kept: {infinite} of {n_val} validation events have no finite density")
        else:
            snapshot = {k: v.detach().cpu().clone() for k, v in flow.state_dict().items()}
            if mixture:
                snapshot["_logit_w"] = logit_w.detach().cpu().clone()
            kept.append((val, epoch + 1, snapshot))
            kept = sorted(kept, key=lambda item: item[0])[:settings.n_best]
        fraction = f" signal fraction {float(torch.sigmoid(logit_w.detach())):.4g}" if mixture else ""
        log(joblog.epoch(epoch + 1, settings.epochs, f"train nll {train_nll:.4f} val nll {val:.4f}{fraction}",
                         time.time() - t0, prefix="flow "))
        if checkpoint:
            # the learning rate follows from the epoch (closed-form schedule): no scheduler state to save
            own = {"kept": kept, "history": history}
            if mixture:
                own["logit_w"] = logit_w.detach().cpu()
            ckpt.save(checkpoint, ident, own, epoch + 1, flow.state_dict(), optimizer)

    if not kept:
        raise FloatingPointError(f"{what} training: no epoch of {settings.epochs} gave every validation event a "
                                 "finite density; lower its learning_rate")
    best_epochs = [epoch for _, epoch, _ in kept]
    log(f"{what}: best validation nll {min(history['val_loss']):.4f}; mixture of epochs {best_epochs}")
    states = [copy.deepcopy(s) for _, _, s in kept]
    fractions = [float(torch.sigmoid(s.pop("_logit_w"))) for s in states] if mixture else None
    return TrainedFlow(states, settings, pre, x.shape[1], history, best_epochs, np.sort(val_idx), ident, fractions,
                       morph_of=base.fingerprint if base is not None else "")


def event_weights(weight: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    """Per-event training weights, checked (one per event, finite, >= 0, some positive); None: unweighted."""
    if weight is None:
        return None
    weight = np.array(weight, float)  # a copy: pandas hands out read-only views, which torch warns about
    if weight.shape != (n,) or not np.all(np.isfinite(weight)) or (weight < 0).any() or not weight.sum() > 0:
        raise ValueError(f"{what} training: weights must be one finite value >= 0 per event, not all 0; got shape "
                         f"{weight.shape} for {n} events")
    return weight


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> float:
    """The mean of per-event losses, weighted when ``weight`` is given."""
    if weight is None:
        return float(values.sum()) / len(values)
    return float((values * weight).sum()) / float(weight.sum())


def sample_sr_mjj(sr_mjj: np.ndarray, n: int, lo: float, hi: float, seed: int,
                  weight: np.ndarray | None = None) -> np.ndarray:
    """``n`` mjj values from a Gaussian KDE of the SR data's mjj (weighted by ``weight``), kept inside [lo, hi)
    (``windows.sample_kde``; a region's ``sample_condition`` is the general form)."""
    from ..windows import sample_kde

    return sample_kde(sr_mjj, n, lambda m: (m >= lo) & (m < hi), seed, weight, f"SR {lo:g}-{hi:g}")
