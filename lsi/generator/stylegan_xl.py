"""StyleGAN-XL generator (``SuperresGenerator`` layout), our implementation, rebuilt from a network pickle's data.

Facts of the official StyleGAN-XL pickles (code written here):

* The synthesis is StyleGAN3's (:class:`lsi.generator.stylegan3.SynthesisNetwork`): ``input``, the stem layers
  ``L0 ... L<k>`` and the super-resolution head layers, in the order of the state's ``layer_names``. The stem's
  critically sampled layers were cut, so the naming skips one index (FFHQ-256: ``input, L0_36_1024 ...
  L7_..., L9_52_1024 ... L17_256_3``; 18 ws).
* The ``synthesis``/``mapping`` records keep the *stem's* ``_init_kwargs`` (e.g. 16 px, 10 layers) while their
  state describes the full network, so everything here is read from the state (``layer_names``, per-layer
  attributes, ``num_ws``), never from ``_init_kwargs`` or ``path_stem``.
* Mapping: z ``[B, z_dim]`` -> 2nd-moment norm -> (if ``c_dim > 0``: ``embed_proj(embed(argmax c))``, normalised,
  concatenated) -> ``fc0 .. fc{n-1}`` (lrelu) -> broadcast. ``embed`` is a ``torch.nn.Embedding(1000, 320)``
  present even when ``c_dim = 0`` (``embed_proj`` is then None); ``w_avg`` is ``[w_dim]`` or, conditional,
  ``[c_dim, w_dim]`` with per-class truncation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator import stylegan3
from lsi.generator.errors import GeneratorFileError
from lsi.generator.layer_specs import fc_spec, get_int, make_fc
from lsi.generator.pickle_records import ModuleRecord
from lsi.generator.stylegan_ops import normalize_2nd_moment


def is_xl(g: ModuleRecord) -> bool:
    """StyleGAN-XL: a ``SuperresGenerator``, or a mapping whose ``embed`` is a ``torch.nn.Embedding``."""
    if g.class_name == "SuperresGenerator":
        return True
    embed = g.child("mapping").children().get("embed")
    return isinstance(embed, ModuleRecord) and embed.class_name.endswith(".Embedding")


def mapping_spec(rec: ModuleRecord) -> dict:
    num_layers, c_dim = get_int(rec, "num_layers"), get_int(rec, "c_dim")
    embed = rec.child("embed").params().get("weight")
    w_avg = rec.buffers().get("w_avg")
    if embed is None or embed.ndim != 2 or w_avg is None:
        raise GeneratorFileError("StyleGAN-XL mapping needs an 'embed' Embedding weight and a 'w_avg' buffer")
    return {"z_dim": get_int(rec, "z_dim"), "c_dim": c_dim, "w_dim": get_int(rec, "w_dim"),
            "num_ws": get_int(rec, "num_ws"), "num_layers": num_layers, "embed_shape": list(embed.shape),
            "embed_proj": fc_spec(rec.child("embed_proj")) if c_dim > 0 else None,
            "w_avg_shape": list(w_avg.shape), "layers": [fc_spec(rec.child(f"fc{i}")) for i in range(num_layers)]}


class XLMapping(nn.Module):
    """z ``[B, z_dim]`` (+ one-hot c ``[B, c_dim]``) -> ws ``[B, num_ws, w_dim]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = spec["z_dim"], spec["c_dim"], spec["w_dim"], spec["num_ws"]
        self.num_layers = spec["num_layers"]
        self.embed = nn.Embedding(*spec["embed_shape"])
        if spec["embed_proj"] is not None:
            self.embed_proj = make_fc(spec["embed_proj"])
        for i, layer in enumerate(spec["layers"]):
            self.add_module(f"fc{i}", make_fc(layer))
        self.register_buffer("w_avg", torch.zeros(spec["w_avg_shape"]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.float())
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is class-conditional: pass c [B, {self.c_dim}] (one-hot labels)")
            y = normalize_2nd_moment(self.embed_proj(F.embedding(c.argmax(1), self.embed.weight)))
            x = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi == 1:
            return ws
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        w_avg = self.w_avg[c.argmax(1)][:, None] if self.c_dim > 0 else self.w_avg  # [B, 1, w_dim] or [w_dim]
        ws = ws.clone()
        ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


def spec_from_record(g: ModuleRecord) -> dict:
    """The JSON spec of a StyleGAN-XL ``G_ema`` record, read from its state only."""
    return {"kind": "stylegan_xl", "mapping": mapping_spec(g.child("mapping")),
            "synthesis": stylegan3.synthesis_spec(g.child("synthesis"))}


def build(spec: dict) -> tuple[XLMapping, stylegan3.SynthesisNetwork]:
    return XLMapping(spec["mapping"]), stylegan3.SynthesisNetwork(spec["synthesis"])
