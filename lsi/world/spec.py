"""Which frozen world a run uses: :class:`WorldSpec`, the ``model.init_args.world`` section of a config.

A world is the frozen generator G, the inversion encoder E (source of the latent targets E(I)), the identity
network of the ID loss and the identity match rate, and the optional perceptual networks (DINO ViT-B/8, an LPIPS
backbone). YAML (every path under the ``weights/`` convention of docs/reproduce-paper.md)::

    model:
      init_args:
        world:
          generator: weights/ffhq256.pkl          # or `embedded` (the default: the world shipped in lsi/weights/)
          generator_kind: auto                    # auto | embedded | pickle | converted
          encoder: weights/encoder_styleganxl.pt  # pSp / LSI checkpoint; null with an embedded generator
          encoder_kind: auto                      # auto | psp | embedded
          identity: weights/model_ir_se50.pth
          identity_kind: auto                     # auto | arcface | embedded
          identity_threshold: null                # cosine distance of an identity match; see below
          dino: weights/dino_vitbase8_pretrain.pth  # null = no DINO loss possible
          lpips_backbone: null                    # torchvision AlexNet checkpoint, only for an LPIPS loss

``auto`` kinds: the generator by its file suffix (``.pkl`` pickle, ``.safetensors``/``.json`` converted, the word
``embedded``); the encoder and the identity net are ``embedded`` when their path is null/``embedded``, else ``psp`` /
``arcface``. :meth:`WorldSpec.check_files` checks every path at once through
:func:`lsi.world.paper_files.check_paper_files` (one error listing every missing file, what it is, where to get it).

The identity match threshold (``identity_threshold``): the embedded identity net ships its own, calibrated at 1%
false accepts on its validation identities; for ArcFace there is no shipped one and the embedded one is never
reused. Rule: a configured value is used as given; null means "calibrate at 1% false accepts on the impostor pairs
of the evaluated originals" (pairs of different people; different images when identities are unknown), computed
by :class:`lsi.eval.reconstruction.ReconstructionMetrics` and reported with the metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from lsi.world.paper_files import check_paper_files

__all__ = ["EMBEDDED", "WorldSpec", "WorldSpecError"]

EMBEDDED = "embedded"
GENERATOR_KINDS = ("auto", "embedded", "pickle", "converted")
ENCODER_KINDS = ("auto", "embedded", "psp")
IDENTITY_KINDS = ("auto", "embedded", "arcface")


class WorldSpecError(ValueError):
    """A ``world`` section that cannot describe a frozen world (the message names the field and the fix)."""


def _embedded(value: str | None) -> bool:
    return value in (None, "", EMBEDDED)


@dataclass(frozen=True)
class WorldSpec:
    """A frozen world, by file paths and kinds (module docstring). Hashable: one shared copy per distinct spec."""

    generator: str = EMBEDDED
    generator_kind: str = "auto"
    encoder: str | None = None
    encoder_kind: str = "auto"
    identity: str | None = None
    identity_kind: str = "auto"
    identity_threshold: float | None = None
    dino: str | None = None
    lpips_backbone: str | None = None
    weights_dir: str | None = None       # folder of the embedded weights (default: lsi/weights/)

    def __post_init__(self) -> None:
        for name, allowed in (("generator_kind", GENERATOR_KINDS), ("encoder_kind", ENCODER_KINDS),
                              ("identity_kind", IDENTITY_KINDS)):
            if getattr(self, name) not in allowed:
                raise WorldSpecError(f"world.{name} is {getattr(self, name)!r}; choose one of {allowed}")
        if self.resolved_generator_kind == "embedded" and not _embedded(self.generator):
            raise WorldSpecError(f"world.generator_kind is 'embedded' but world.generator names a file "
                                 f"({self.generator}); use generator: embedded or generator_kind: auto")
        if self.resolved_generator_kind != "embedded" and self.resolved_encoder_kind == "embedded":
            raise WorldSpecError(
                f"world.generator is {self.generator} but the encoder is the embedded one, which inverts only the "
                "embedded generator: set world.encoder to the pSp/LSI checkpoint trained for this generator "
                "(e.g. weights/encoder_styleganxl.pt)")
        if self.resolved_generator_kind == "embedded" and self.resolved_encoder_kind == "psp":
            raise WorldSpecError("world.encoder is a pSp checkpoint but world.generator is the embedded one: a pSp "
                                 "encoder inverts the generator it was trained for; set world.generator too")
        if self.identity_threshold is not None and not 0.0 <= float(self.identity_threshold) <= 2.0:
            raise WorldSpecError(f"world.identity_threshold is a cosine distance in [0, 2], got "
                                 f"{self.identity_threshold}")

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, world: WorldSpec | dict[str, Any] | None = None, generator: str = EMBEDDED,
                    weights_dir: str | None = None) -> WorldSpec:
        """The spec of a module's arguments: ``world`` (a dict from YAML) when given, else the older pair
        ``generator`` / ``weights_dir`` (``generator: embedded`` checkpoints keep loading)."""
        if isinstance(world, WorldSpec):
            return world
        if world is None:
            return cls(generator=generator or EMBEDDED, weights_dir=weights_dir)
        if not isinstance(world, dict):
            raise WorldSpecError(f"model.init_args.world must be a mapping of {[f.name for f in fields(cls)]}, "
                                 f"got {type(world).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(world) - known)
        if unknown:
            raise WorldSpecError(f"unknown key(s) {unknown} in model.init_args.world; known keys: {sorted(known)}")
        values = dict(world)
        if weights_dir is not None and values.get("weights_dir") is None:
            values["weights_dir"] = weights_dir
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- resolved kinds -----------------------------------------------------------------------------------
    @property
    def resolved_generator_kind(self) -> str:
        if self.generator_kind != "auto":
            return self.generator_kind
        if _embedded(self.generator):
            return "embedded"
        suffix = Path(self.generator).suffix.lower()
        if suffix in (".pkl", ".pickle"):
            return "pickle"
        if suffix in (".safetensors", ".json"):
            return "converted"
        raise WorldSpecError(f"world.generator {self.generator}: cannot tell its kind from the suffix {suffix!r}; "
                             "give an NVIDIA network pickle (.pkl), a converted .safetensors file, or `embedded`")

    @property
    def resolved_encoder_kind(self) -> str:
        if self.encoder_kind != "auto":
            return self.encoder_kind
        return "embedded" if _embedded(self.encoder) else "psp"

    @property
    def resolved_identity_kind(self) -> str:
        if self.identity_kind != "auto":
            return self.identity_kind
        return "embedded" if _embedded(self.identity) else "arcface"

    @property
    def is_embedded(self) -> bool:
        """Everything from the shipped embedded world (no foreign file at all)."""
        return (self.resolved_generator_kind == "embedded" and self.resolved_encoder_kind == "embedded"
                and self.resolved_identity_kind == "embedded")

    def describe(self) -> str:
        """One line for logs and checkpoints: ``embedded`` or the generator file's name."""
        return EMBEDDED if self.resolved_generator_kind == "embedded" else Path(self.generator).name

    # -- files --------------------------------------------------------------------------------------------
    def check_files(self) -> dict[str, Path]:
        """Every foreign file this spec names, checked at once (:func:`check_paper_files`); ``{role: Path}``."""
        paths: dict[str, str | None] = {}
        if self.resolved_generator_kind != "embedded":
            paths["generator"] = self.generator
        if self.resolved_encoder_kind == "psp":
            paths["encoder"] = None if _embedded(self.encoder) else self.encoder
        if self.resolved_identity_kind == "arcface":
            paths["identity"] = None if _embedded(self.identity) else self.identity
        if self.dino:
            paths["dino"] = self.dino
        if self.lpips_backbone:
            paths["lpips_backbone"] = self.lpips_backbone
        return check_paper_files(paths) if paths else {}
