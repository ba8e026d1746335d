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
    (M, B, n_out) (e.g. an autoencoder's reconstruction, ``n_out = n_in``).

    ``layers``, a list of (fan_in, fan_out), replaces that chain where one layer's output is not the next one's
    input (a VAE's encoder ends in a mean and a log-variance per latent dimension, its decoder starts from one).
    """

    def __init__(self, n_in: int, hidden: list[int], member_seeds: list[int], n_out: int = 1,
                 layers: list[tuple[int, int]] | None = None):
        super().__init__()
        self.member_seeds = [int(s) for s in member_seeds]
        sizes = [n_in, *hidden, n_out]
        self.layers = list(layers) if layers is not None else list(zip(sizes[:-1], sizes[1:]))
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        per_member = [self._init_member(seed) for seed in self.member_seeds]
        for layer in range(len(self.layers)):
            self.weights.append(torch.nn.Parameter(torch.stack([p[layer][0] for p in per_member])))
            self.biases.append(torch.nn.Parameter(torch.stack([p[layer][1] for p in per_member])))

    def _init_member(self, seed: int):
        """PyTorch's default Linear initialisation, drawn from the member's own generator."""
        gen = member_generator(seed)
        params = []
        for fan_in, fan_out in self.layers:
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


def vae_layers(n_in: int, hidden: list[int]) -> tuple[list[tuple[int, int]], int]:
    """A VAE's layers for ``hidden`` with its bottleneck, the narrowest layer (e.g. [32, 2, 32]: a 2-dimensional
    latent space): the encoder ends in a mean and a log-variance per latent dimension, the decoder starts from the
    latent point. Returns the layers and the index of the encoder's last one."""
    b = min(range(len(hidden)), key=lambda i: hidden[i])
    encoder = [n_in, *hidden[:b], 2 * hidden[b]]
    decoder = [hidden[b], *hidden[b + 1:], n_in]
    return list(zip(encoder[:-1], encoder[1:])) + list(zip(decoder[:-1], decoder[1:])), len(encoder) - 2


def apply_vae(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, split: int,
              noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A VAE ensemble's forward pass: (reconstruction, mean, log-variance), each (M, B, ·). The latent point is
    mean + noise * exp(log-variance / 2) with the given standard-normal ``noise`` (M, B, latent), the mean without
    (validation and scoring: deterministic)."""
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(weights[0].shape[0], -1, -1)
    h = x
    for i in range(split + 1):
        h = torch.baddbmm(biases[i], h, weights[i])
        if i < split:
            h = torch.relu(h)
    latent = h.shape[-1] // 2
    mean, log_var = h[..., :latent], h[..., latent:].clamp(-10.0, 10.0)
    z = mean if noise is None else mean + noise.to(mean.dtype) * torch.exp(0.5 * log_var)
    last = len(weights) - 1
    for i in range(split + 1, last + 1):
        z = torch.baddbmm(biases[i], z, weights[i])
        if i < last:
            z = torch.relu(z)
    return z, mean, log_var
