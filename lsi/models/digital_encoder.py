"""Digital encoder D_theta: single-pixel readings -> W+ offset from ``w_avg``.

Architecture (one independent "style block" per W+ level; levels of a group run batched):

* W+ levels are split into coarse / mid / fine groups (default 4/4/rest of 18, scaled to ``num_ws``).
* Style block of level ``l``: ``LayerNorm(d_in) -> Linear(d_in, hidden) -> SiLU`` (stem ``h0``), then
  ``depth`` blocks ``[LayerNorm, Linear or token self-attention, SiLU, Dropout]`` (residual by default),
  then ``Linear(hidden, w_dim)``. Depths grow coarse -> fine (default 4, 5, 6 = log2 of 16, 32, 64).
* Hierarchical feed: the outputs of a group are aggregated over its levels ("sum", or a gMLP then sum),
  projected to ``hidden`` and added to the stems of the next non-empty group (``h0 + proj(agg(prev))``).
* Output mixer: a residual gMLP block whose spatial gating unit mixes information across the ``num_ws`` axis.
* Optional linear path (``linear_path=True``): ``D(y) = linear(y) + nonlinear(y)``. The linear map is set in closed
  form by ridge regression (:meth:`DigitalEncoder.set_linear_path`) and the style blocks' output layers start at
  zero, so training starts from the best linear read-out and the blocks learn the residual.

Internally tensors are level-major ``[levels, B, features]`` so each group is a few batched matmuls.
The LayerNorms in front of a Linear carry no affine parameters: a per-level scale/shift would be absorbed
by that level's Linear anyway (same function class, fewer kernels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DigitalEncoder", "GroupedLinear", "SpatialGatingMLP", "default_groups"]


def default_groups(num_ws: int) -> tuple[int, int]:
    """Boundaries ``(coarse_end, mid_end)`` proportional to StyleGAN's 4/4/rest split of 18 levels."""
    size = max(1, round(4 * num_ws / 18))
    coarse_end = min(num_ws, size)
    return coarse_end, min(num_ws, coarse_end + size)


class GroupedLinear(nn.Module):
    """``n`` independent linear layers applied level-wise: ``[n, ..., in] -> [n, ..., out]``."""

    def __init__(self, n: int, in_features: int, out_features: int, init_scale: float = 1.0) -> None:
        super().__init__()
        bound = init_scale / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n, 1, out_features))

    def forward(self, x: Tensor) -> Tensor:
        n, k, out = self.weight.shape
        y = torch.baddbmm(self.bias, x.reshape(n, -1, k), self.weight)  # [n, M, out]
        return y if x.ndim == 3 else y.view(*x.shape[:-1], out)


class GroupedTokenAttention(nn.Module):
    """Per-level multi-head self-attention over ``tokens`` tokens cut from the hidden vector: ``[n, B, hidden]``."""

    def __init__(self, n: int, hidden: int, tokens: int, heads: int) -> None:
        super().__init__()
        if hidden % tokens or (hidden // tokens) % heads:
            raise ValueError(
                f"attention needs hidden divisible by tokens and hidden/tokens divisible by heads; got "
                f"hidden={hidden}, tokens={tokens}, heads={heads}"
            )
        self.n, self.tokens, self.heads, self.dim = n, tokens, heads, hidden // tokens
        self.qkv = GroupedLinear(n, self.dim, 3 * self.dim)
        self.out = GroupedLinear(n, self.dim, self.dim)

    def forward(self, x: Tensor) -> Tensor:
        # shapes from the module's own sizes (the batch is -1): an exported graph needs no Shape/Gather plumbing
        n, t, h, dh = self.n, self.tokens, self.heads, self.dim // self.heads
        qkv = self.qkv(x.reshape(n, -1, self.dim)).view(-1, t, 3, h, dh).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [n*b, h, t, dh]
        z = z.transpose(1, 2).reshape(n, -1, self.dim)
        return self.out(z).view(n, -1, t * self.dim)


class SpatialGatingMLP(nn.Module):
    """Residual gMLP block over a level axis: ``[B, L, dim] -> [B, L, dim]``.

    ``z = GELU(Linear(LN(x)))`` split into ``u, v``; ``v = W_L LN(v) + b`` mixes across the ``L`` levels
    (``W_L`` zero-initialised, ``b = 1``, so the gate starts as identity); ``x + Linear(u * v)``. The output
    projection is zero-initialised, so the block starts as the identity.
    """

    def __init__(self, levels: int, dim: int, expansion: int | None = None) -> None:
        super().__init__()
        e = expansion or dim
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, 2 * e)
        self.gate_norm = nn.LayerNorm(e)
        self.spatial_weight = nn.Parameter(torch.zeros(levels, levels))
        self.spatial_bias = nn.Parameter(torch.ones(levels, 1))
        self.proj_out = nn.Linear(e, dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor) -> Tensor:
        u, v = F.gelu(self.proj_in(self.norm(x))).chunk(2, dim=-1)
        v = torch.matmul(self.spatial_weight, self.gate_norm(v)) + self.spatial_bias
        return x + self.proj_out(u * v)


class _LevelGroup(nn.Module):
    """Style blocks of one level group (coarse, mid or fine), batched over its levels."""

    def __init__(
        self, n: int, d_in: int, hidden: int, w_dim: int, depth: int, block: str, residual: bool,
        dropout: float, heads: int, tokens: int,
    ) -> None:
        super().__init__()
        self.n, self.residual, self.hidden = n, residual, hidden
        bound = 1 / math.sqrt(d_in)  # per-level stems stored side by side: one GEMM for the whole group
        self.stem_weight = nn.Parameter(torch.empty(d_in, n * hidden).uniform_(-bound, bound))
        self.stem_bias = nn.Parameter(torch.zeros(n * hidden))
        if block == "linear":
            self.mixers = nn.ModuleList(GroupedLinear(n, hidden, hidden) for _ in range(depth))
        else:
            self.mixers = nn.ModuleList(GroupedTokenAttention(n, hidden, tokens, heads) for _ in range(depth))
        self.drop = nn.Dropout(dropout)
        self.head = GroupedLinear(n, hidden, w_dim, init_scale=0.1)

    def forward(self, x: Tensor, feed: Tensor | None) -> Tensor:
        """``x``: ``[B, d_in]``; ``feed``: ``[B, hidden]`` or None -> ``[n, B, w_dim]``."""
        xn = F.layer_norm(x, (self.stem_weight.shape[0],))  # static shape: exportable
        h = F.silu(torch.addmm(self.stem_bias, xn, self.stem_weight))  # [B, n * hidden]
        h = h.view(-1, self.n, self.hidden).transpose(0, 1).contiguous()  # [n, B, hidden]
        if feed is not None:
            h = h + feed
        for mix in self.mixers:
            z = self.drop(F.silu(mix(F.layer_norm(h, (self.hidden,)))))
            h = h + z if self.residual else z
        return self.head(h)


class DigitalEncoder(nn.Module):
    """Readings ``[B, d_in]`` -> W+ offset ``[B, num_ws, w_dim]`` from ``w_avg``.

    Args:
        d_in: number of readings (``d``, or ``2d`` with complementary masks).
        num_ws, w_dim: W+ shape of the generator.
        hidden: width of each style block.
        depths: blocks per level in the coarse, mid and fine groups.
        block: ``"linear"`` or ``"attention"`` (self-attention over ``tokens`` chunks of the hidden vector).
        residual: residual connections around each block.
        dropout: dropout after each block's activation.
        aggregate: how a group's outputs are summarised for the next group: ``"sum"`` or ``"gmlp"``.
        groups: ``(coarse_end, mid_end)`` level boundaries; default :func:`default_groups`.
        mixer: apply the output gMLP mixer across levels.
        linear_path: add a linear map ``Linear(d_in, num_ws * w_dim)`` to the output (see module docstring).
        heads, tokens: attention heads and tokens (attention blocks only).
    """

    def __init__(
        self,
        d_in: int,
        num_ws: int,
        w_dim: int,
        hidden: int = 256,
        depths: tuple[int, int, int] = (4, 5, 6),
        block: str = "linear",
        residual: bool = True,
        dropout: float = 0.0,
        aggregate: str = "sum",
        groups: tuple[int, int] | None = None,
        mixer: bool = True,
        linear_path: bool = False,
        heads: int = 4,
        tokens: int = 8,
    ) -> None:
        super().__init__()
        self.config = {"d_in": d_in, "num_ws": num_ws, "w_dim": w_dim, "hidden": hidden, "depths": tuple(depths),
                       "block": block, "residual": residual, "dropout": dropout, "aggregate": aggregate,
                       "groups": groups, "mixer": mixer, "linear_path": linear_path, "heads": heads, "tokens": tokens}
        if min(d_in, num_ws, w_dim, hidden) < 1:
            raise ValueError(f"d_in, num_ws, w_dim and hidden must be >= 1, got {d_in}, {num_ws}, {w_dim}, {hidden}")
        if block not in ("linear", "attention"):
            raise ValueError(f"block must be 'linear' or 'attention', got {block!r}")
        if aggregate not in ("sum", "gmlp"):
            raise ValueError(f"aggregate must be 'sum' or 'gmlp', got {aggregate!r}")
        if len(depths) != 3 or min(depths) < 0:
            raise ValueError(f"depths must be three non-negative ints (coarse, mid, fine), got {depths}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        c, m = groups if groups is not None else default_groups(num_ws)
        if not 0 <= c <= m <= num_ws:
            raise ValueError(f"groups (coarse_end, mid_end) must satisfy 0 <= {c} <= {m} <= num_ws={num_ws}")
        self.d_in, self.num_ws, self.w_dim, self.hidden = d_in, num_ws, w_dim, hidden
        self.bounds = (0, c, m, num_ws)
        sizes = [self.bounds[i + 1] - self.bounds[i] for i in range(3)]
        self.level_groups = nn.ModuleList()
        self.aggregators = nn.ModuleList()
        self.feeds = nn.ModuleList()
        for size, depth in zip(sizes, depths):
            if size == 0:
                continue
            if len(self.level_groups):  # feed from the previous non-empty group
                self.feeds.append(nn.Linear(w_dim, hidden))
            self.level_groups.append(
                _LevelGroup(size, d_in, hidden, w_dim, depth, block, residual, dropout, heads, tokens)
            )
        n_groups = len(self.level_groups)
        for i, group in enumerate(self.level_groups):  # the last group feeds nothing: no aggregator
            use_gmlp = aggregate == "gmlp" and i + 1 < n_groups
            self.aggregators.append(SpatialGatingMLP(group.n, w_dim) if use_gmlp else nn.Identity())
        self.mixer = SpatialGatingMLP(num_ws, w_dim) if mixer else None
        self.linear: nn.Linear | None = None
        if linear_path:
            self.linear = nn.Linear(d_in, num_ws * w_dim)
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
            for group in self.level_groups:  # the blocks start silent: D starts as the (ridge-set) linear map
                nn.init.zeros_(group.head.weight)

    @classmethod
    def paper_scale(cls, d_in: int, **overrides) -> DigitalEncoder:
        """The full-size configuration for StyleGAN-XL (18 x 512 W+, width 1024, attention blocks)."""
        cfg = dict(num_ws=18, w_dim=512, hidden=1024, depths=(4, 5, 6), block="attention", heads=8, tokens=8)
        cfg.update(overrides)
        return cls(d_in, **cfg)

    def nonlinear(self, readings: Tensor) -> Tensor:
        """The style blocks alone (no linear path): ``[B, d_in]`` -> ``[B, num_ws, w_dim]``."""
        if readings.ndim != 2 or readings.shape[1] != self.d_in:
            raise ValueError(f"readings must be [B, {self.d_in}], got {tuple(readings.shape)}")
        outs: list[Tensor] = []
        feed: Tensor | None = None
        for i, (group, agg) in enumerate(zip(self.level_groups, self.aggregators)):
            out = group(readings, feed)  # [n, B, w_dim]
            outs.append(out)
            if i + 1 < len(self.level_groups):
                summary = agg(out.transpose(0, 1)).sum(dim=1)  # [B, w_dim]
                feed = self.feeds[i](summary)
        w = torch.cat(outs, dim=0).transpose(0, 1)  # [B, num_ws, w_dim]
        if self.mixer is not None:
            w = self.mixer(w)
        return w

    def forward(self, readings: Tensor) -> Tensor:
        """``readings``: ``[B, d_in]`` -> W+ offset ``[B, num_ws, w_dim]``."""
        w = self.nonlinear(readings)
        if self.linear is not None:
            w = w + self.linear(readings).view(-1, self.num_ws, self.w_dim)
        return w

    @torch.no_grad()
    def reinitialise(self, seed: int = 0) -> None:
        """Back to a fresh initialisation (seeded), in place: the parameter tensors stay the same objects, so an
        optimiser holding them keeps working (clear its state for them)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            fresh = DigitalEncoder(**self.config)
        for name, value in fresh.state_dict().items():
            self.state_dict()[name].copy_(value)

    @torch.no_grad()
    def set_linear_path(self, weight: Tensor, bias: Tensor) -> None:
        """Set the linear path: ``weight [num_ws * w_dim, d_in]``, ``bias [num_ws * w_dim]`` (e.g. from
        :func:`lsi.eval.linear_readout.fit_ridge`)."""
        if self.linear is None:
            raise ValueError("this D_theta has no linear path; build it with linear_path=True")
        self.linear.weight.copy_(weight)
        self.linear.bias.copy_(bias)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, num_ws={self.num_ws}, w_dim={self.w_dim}, hidden={self.hidden}, groups={self.bounds}"
