"""A vectorised MLP ensemble: many independent networks trained as one batched model.

One tiny MLP per process leaves a GPU (and even a CPU core) idle, so all members of a training
job live in stacked weight tensors of shape ``(members, fan_in, fan_out)`` and run with batched
matmuls. Each member has its own initialisation, seeded by its own seed alone, so member ``m``
of a batched model is the same network as a single-member model with the same seed.
"""

from __future__ import annotations

import math

import torch


def member_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(int(seed) % (2**63))


def member_permutations(seeds: list[int], sizes: list[int], length: int, device: torch.device) -> torch.Tensor:
    """Per seed, ``length`` indices into ``range(size)``, shape (len(seeds), length), on ``device``.

    A row is one random permutation of its member's ``size`` events, followed by further
    permutations cut short when ``length`` is longer: members with fewer events fill the epoch
    of a batched model with extra draws of their own events. Each row comes from its own seed's
    generator, so it does not depend on the other rows. On a GPU the permutations are drawn
    there: drawing a thousand on the CPU and copying them over would take longer than the epoch
    they shuffle.
    """
    rows = []
    for seed, size in zip(seeds, sizes):
        gen = member_generator(seed, device if device.type == "cuda" else "cpu")
        passes = -(-length // size)
        perms = [torch.randperm(size, generator=gen, device=gen.device) for _ in range(passes)]
        rows.append(torch.cat(perms)[:length] if passes > 1 else perms[0][:length])
    return torch.stack(rows).to(device)


class MLPEnsemble(torch.nn.Module):
    """``members`` MLPs ``n_in -> hidden... -> n_out`` with ReLU, outputting shape (M, B) (one logit each) or
    (M, B, n_out) (e.g. an autoencoder's reconstruction, ``n_out = n_in``)."""

    def __init__(self, n_in: int, hidden: list[int], member_seeds: list[int], n_out: int = 1):
        super().__init__()
        self.member_seeds = [int(s) for s in member_seeds]
        self.sizes = [n_in, *hidden, n_out]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        per_member = [self._init_member(seed) for seed in self.member_seeds]
        for layer in range(len(self.sizes) - 1):
            self.weights.append(torch.nn.Parameter(torch.stack([p[layer][0] for p in per_member])))
            self.biases.append(torch.nn.Parameter(torch.stack([p[layer][1] for p in per_member])))

    def _init_member(self, seed: int):
        """PyTorch's default Linear initialisation, drawn from the member's own generator."""
        gen = member_generator(seed)
        params = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(1, fan_out, generator=gen) * 2 - 1) * bound
            params.append((w, b))
        return params

    @property
    def n_members(self) -> int:
        return len(self.member_seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (M, B, n_in), one batch per member, or (B, n_in) shared by all members."""
        return apply_mlp(list(self.weights), list(self.biases), x)


def apply_mlp(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The ensemble's forward pass for any stacked parameters (e.g. a saved best-epoch snapshot)."""
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(weights[0].shape[0], -1, -1)
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(b, x, w)
        if i < last:
            x = torch.relu(x)
    return x.squeeze(-1) if x.shape[-1] == 1 else x
