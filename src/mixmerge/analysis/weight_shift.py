"""Weight-shift footprint (study §6.1, Table 5, Figure 3): which weights each node changed relative to SFT, how
much those sets overlap, and whether the shifts point the same way.

- Mask: a weight counts as changed when ``|w - w_SFT| > eta * max(|w|, |w_SFT|)``.
- Jaccard ``|M_a ∧ M_b| / |M_a ∨ M_b|`` for every pair, beside the random reference: two independent masks of
  the same densities p, q have expected Jaccard ``pq / (p + q - pq)``, and one seeded draw of such a pair (the
  four cell counts of two independent Bernoulli masks over d weights are multinomial, so the draw is exact and
  costs nothing whatever d).
- Update density per node and per tensor family (attention, MLP, embeddings, norms, other).
- Direction: the cosine of the shift vectors ``Δ = w - w_SFT`` after a seeded random projection to ``dim``
  coordinates, over the whole model and over the pair's jointly changed coordinates, for each projection seed.
  The projection is a sign-hashing sketch: a seeded permutation deals the weights of each chunk into ``dim``
  equal blocks (one permutation per seed, the same for every chunk), each weight with its own random sign; an
  output coordinate sums its block and is divided by the square root of how many weights it received, so the
  projection's rows are orthonormal (disjoint supports) and it costs O(d) per node (the joint projections of
  all N^2 pairs: O(d N^2) multiply-adds in one batched matrix product per chunk). The exact cosines (no
  projection) sit beside it.

Checkpoints are streamed: one flat range of one tensor of every node at a time (pread, no mmap), so memory
holds a chunk per node, never a model.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

FAMILIES = ("attention", "mlp", "embeddings", "norms", "other")


def tensor_family(name: str) -> str:
    """The family of a parameter from its name (HF naming: Qwen, Llama, GPT-2 style)."""
    low = name.lower()
    if "norm" in low or re.search(r"(^|\.)ln_", low):
        return "norms"
    if "embed" in low or "lm_head" in low or re.search(r"(^|\.)w[tp]e\.", low):
        return "embeddings"
    if "attn" in low or "attention" in low:
        return "attention"
    if "mlp" in low or "feed_forward" in low or "ffn" in low:
        return "mlp"
    return "other"


def changed_mask(weights: torch.Tensor, sft: torch.Tensor, eta: float) -> torch.Tensor:
    """The weights changed relative to SFT: ``|w - w_SFT| > eta * max(|w|, |w_SFT|)`` (float32 arithmetic)."""
    w, s = weights.float(), sft.float()
    return (w - s).abs() > eta * torch.maximum(w.abs(), s.abs())


def jaccard(intersections: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Jaccard matrix from the pairwise intersection counts and each mask's count (NaN where both are empty)."""
    inter = np.asarray(intersections, dtype=float)
    union = counts[:, None] + counts[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def random_reference(p: float, q: float) -> float:
    """Expected Jaccard of two independent random masks with densities p and q: ``pq / (p + q - pq)``."""
    union = p + q - p * q
    return p * q / union if union > 0 else math.nan


def random_draw(p: float, q: float, size: int, seed: int) -> float:
    """The Jaccard of one seeded draw of two independent Bernoulli(p), Bernoulli(q) masks over ``size`` weights:
    the counts of (both, only a, only b, neither) are multinomial."""
    both, only_a, only_b, _ = np.random.default_rng(seed).multinomial(
        size, [p * q, p * (1 - q), (1 - p) * q, (1 - p) * (1 - q)])
    union = both + only_a + only_b
    return both / union if union else math.nan


def cosine_matrix(gram: np.ndarray) -> np.ndarray:
    """Cosines from a Gram matrix of inner products (NaN where a vector is zero)."""
    norms = np.sqrt(np.clip(np.diag(gram), 0, None))
    outer = np.outer(norms, norms)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(outer > 0, gram / np.where(outer > 0, outer, 1), np.nan)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom > 0 else math.nan


@dataclass
class Sketch:
    """One projection seed's random generator and what it has accumulated: each node's projected shift over the
    whole model (N x dim), each node's projected shift on its jointly changed coordinates with every other node
    (N x N x dim; [a, b] = a's shift restricted to where a and b both changed) and how many weights each output
    coordinate received."""
    seed: int
    n_nodes: int
    dim: int
    width: int = 1 << 20              # the largest chunk
    generator: torch.Generator = field(init=False)

    def __post_init__(self):
        self.generator = torch.Generator().manual_seed(self.seed)
        self.slots = -(-self.width // self.dim) * self.dim
        self.deal = torch.randperm(self.slots, generator=self.generator)
        self.whole = torch.zeros(self.n_nodes, self.dim, dtype=torch.float64)
        self.joint = torch.zeros(self.n_nodes, self.n_nodes, self.dim, dtype=torch.float64)
        self.received = torch.zeros(self.dim, dtype=torch.float64)

    def add(self, delta: torch.Tensor, masks: torch.Tensor) -> None:
        """Project one chunk (the next coordinates in the stream, so a seed always gives the same map): the seed's
        permutation (restricted to the chunk's size, zero-padded to a multiple of ``dim``) deals its coordinates
        into ``dim`` equal blocks, each coordinate with a fresh random sign; an output coordinate sums its block.
        The joint projections are then one batched matrix product per chunk: [a, b, k] = sum over block k of
        sign * Δ_a * M_a * M_b."""
        n, size = delta.shape
        if size > self.width:
            raise ValueError(f"a chunk of {size} weights is larger than the sketch's width {self.width}")
        per = -(-size // self.dim)
        order = self.deal if per * self.dim == self.slots else self.deal[self.deal < per * self.dim]
        sign = torch.randint(0, 2, (size,), generator=self.generator, dtype=torch.int8).float().mul_(2).sub_(1)
        padded = torch.zeros(2 * n, per * self.dim)
        torch.mul(delta, sign, out=padded[:n, :size])
        padded[n:, :size] = masks
        dealt = torch.index_select(padded, 1, order).view(2 * n, self.dim, per)
        signed, ones = dealt[:n], dealt[n:]
        self.whole += signed.sum(-1).double()
        on_mask = (signed * ones).transpose(0, 1)                       # dim x N x per
        self.joint += torch.bmm(on_mask, ones.permute(1, 2, 0)).permute(1, 2, 0).double()
        self.received += (order < size).view(self.dim, per).sum(-1).double()

    def cosines(self) -> tuple[np.ndarray, np.ndarray]:
        """(whole-model cosines, jointly-changed cosines), N x N, in the orthonormal projection."""
        scale = torch.where(self.received > 0, self.received.rsqrt(), torch.zeros_like(self.received))
        whole = (self.whole * scale).numpy()
        joint = (self.joint * scale).numpy()
        n = self.n_nodes
        joint_cos = np.array([[cosine(joint[a, b], joint[b, a]) for b in range(n)] for a in range(n)])
        return cosine_matrix(whole @ whole.T), joint_cos


class ShiftStats:
    """Streaming sums over chunks of every node's shift: mask counts (overall and per family), pairwise mask
    intersections, exact inner products (whole and on jointly changed coordinates) and the sketches."""

    def __init__(self, n_nodes: int, dim: int, seeds: list[int], width: int = 1 << 20):
        self.n = n_nodes
        self.total = 0
        self.changed = np.zeros(n_nodes)
        self.family_size = dict.fromkeys(FAMILIES, 0)
        self.family_changed = {f: np.zeros(n_nodes) for f in FAMILIES}
        self.inter = np.zeros((n_nodes, n_nodes))
        self.dot = np.zeros((n_nodes, n_nodes))
        self.joint_dot = np.zeros((n_nodes, n_nodes))
        self.joint_sq = np.zeros((n_nodes, n_nodes))   # [a, b]: |Δ_a|² on a ∧ b
        self.sketches = [Sketch(s, n_nodes, dim, width) for s in seeds]

    def add(self, family: str, delta: torch.Tensor, masks: torch.Tensor) -> None:
        """One chunk: ``delta`` and ``masks`` are N x c (node x coordinate)."""
        ones = masks.float()
        counts = ones.sum(dim=1).double().numpy()
        self.total += delta.shape[1]
        self.changed += counts
        self.family_size[family] += delta.shape[1]
        self.family_changed[family] += counts
        self.inter += (ones @ ones.T).double().numpy()
        self.dot += (delta @ delta.T).double().numpy()
        on_mask = delta * ones
        self.joint_dot += (on_mask @ on_mask.T).double().numpy()
        self.joint_sq += ((delta * on_mask) @ ones.T).double().numpy()
        for sketch in self.sketches:
            sketch.add(delta, masks)

    def joint_cosines(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = np.sqrt(self.joint_sq * self.joint_sq.T)
            return np.where(denom > 0, self.joint_dot / np.where(denom > 0, denom, 1), np.nan)
