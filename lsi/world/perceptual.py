"""Perceptual losses that never download anything.

- ``lpips`` (:class:`LpipsLocal`): the ``lpips`` package's linear heads (shipped inside the package) on an AlexNet /
  VGG-16 / SqueezeNet backbone built with ``pnet_rand=True`` (no torchvision download) whose ImageNet weights are
  read from a local file - torchvision's own checkpoint (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``,
  ``squeezenet1_1-b8a52dc0.pth``; only its ``features.*`` entries are used) - with ``weights_only=True``.
  ``(a, b)`` images ``[B,3,H,W]`` in [-1,1] -> distance ``[B]``.
- ``identity-features`` (:class:`IdentityFeatureDistance`): the documented offline variant for the embedded world:
  normalised activations of the embedded identity network's residual stages, compared like LPIPS (unit-normalised
  channels, squared difference, spatial mean, summed over stages) with uniform channel weights. ``[B]`` too.
- DINO (:class:`DinoFeatureLoss`): the LSI training's DINO loss (weight 0.1 in the official recipe) on timm's
  ``vit_base_patch8_224.dino`` architecture (``pretrained=False``) with a local checkpoint. Definition, as the
  official LSI code computes it (``Splice.calculate_sim_loss(y_hat, y, mode='f', layer_num=11)``, read from
  github.com/vccimaging/latent-imaging, written here from that description): each image in [-1,1] is mapped to
  [0,1], resized to 224 x 224 (bilinear, antialiased: torchvision ``Resize(224)``), ImageNet-normalised; its
  features are the tokens output by transformer block 11 (the last block, before the final LayerNorm), CLS and
  all 28 x 28 patch tokens, ``[785, 768]``; the target's features carry no gradient. The loss is the mean squared
  difference over tokens and channels, **summed** over the batch (``reduction='sum'``, the official form, so its
  size grows with the batch size; ``reduction='mean'`` averages instead). A scalar.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lsi.inversion.weights_file import WeightsFileError, load_state_strict, read_torch_file, tensor_state

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
                  "squeeze": "squeezenet1_1-b8a52dc0.pth"}
LPIPS_SOURCE = ("torchvision's ImageNet checkpoint of the backbone (https://download.pytorch.org/models/"
                "{file}, the file torchvision downloads for models.{model}(weights='IMAGENET1K_V1'))")
LPIPS_MODELS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}

DINO_ARCH = "vit_base_patch8_224.dino"
DINO_LAYER = 11
DINO_RESOLUTION = 224
DINO_WHAT = "DINO ViT-B/8 weights"
DINO_SOURCE = ("dino_vitbase8_pretrain.pth from facebookresearch/dino (https://dl.fbaipublicfiles.com/dino/"
               "dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth) or timm's model.safetensors of "
               "vit_base_patch8_224.dino (https://huggingface.co/timm/vit_base_patch8_224.dino)")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class LpipsLocal(nn.Module):
    """LPIPS ``(a, b) -> [B]`` with the backbone read from ``backbone_path`` (torchvision's checkpoint)."""

    def __init__(self, backbone_path: str | Path, net: str = "alex") -> None:
        super().__init__()
        if net not in BACKBONE_FILES:
            raise ValueError(f"LPIPS backbone {net!r} is not one of {sorted(BACKBONE_FILES)}")
        import lpips  # builds torchvision's model zoo on import: only when the lpips loss is chosen

        what = f"LPIPS {net} backbone weights ({BACKBONE_FILES[net]})"
        source = LPIPS_SOURCE.format(file=BACKBONE_FILES[net], model=LPIPS_MODELS[net])
        path = Path(backbone_path)
        state = tensor_state(read_torch_file(path, what, source), path, what, source)
        with warnings.catch_warnings():  # lpips passes torchvision the deprecated `pretrained=False`: harmless here
            warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        # the backbone's slices keep torchvision's feature indices as child names: slice2.3.weight = features.3.weight
        wanted = {f"{sname}.{pname}": f"features.{pname}"
                  for sname, sl in self.model.net.named_children() for pname, _ in sl.named_parameters()}
        missing = sorted(v for v in wanted.values() if v not in state)
        if missing:
            raise WeightsFileError(f"{what} {path} lacks {', '.join(missing[:4])}"
                                   f"{' ...' if len(missing) > 4 else ''}: not torchvision's {LPIPS_MODELS[net]} "
                                   f"checkpoint. Get {source}.")
        load_state_strict(self.model.net, {k: state[v] for k, v in wanted.items()}, path, what, source)
        self.model.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b).flatten()


class IdentityFeatureDistance(nn.Module):
    """LPIPS-style distance on the frozen embedded identity network's stage activations (``identity.body``)."""

    def __init__(self, identity: nn.Module) -> None:
        super().__init__()
        if not isinstance(getattr(identity, "body", None), nn.Sequential) or not hasattr(identity, "cfg"):
            raise ValueError("perceptual='identity-features' reads the embedded identity network's stages; with "
                             "another identity network use perceptual='lpips' (model.init_args.world.lpips_backbone)")
        self._body = [identity.body]  # list: keep the shared frozen net unregistered

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        body = self._body[0]
        s = 64
        x = F.interpolate(torch.cat([a, b]), size=(s, s), mode="area")
        total = torch.zeros(a.shape[0], device=a.device)
        for i, layer in enumerate(body):
            x = layer(x)
            if i >= 3 and i % 2 == 0:  # after each residual stage
                fa, fb = F.normalize(x[: a.shape[0]], dim=1), F.normalize(x[a.shape[0]:], dim=1)
                total = total + (fa - fb).square().sum(1).mean(dim=(1, 2))
        return total


def _dino_state(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """The backbone keys of a DINO / timm checkpoint: unwraps ``teacher`` / ``model`` / ``state_dict``, strips the
    ``module.`` and ``backbone.`` prefixes of DINO's full training checkpoints and drops the DINO ``head.*``."""
    if isinstance(raw, dict):
        for wrapper in ("teacher", "model", "state_dict"):
            if isinstance(raw.get(wrapper), dict):
                raw = raw[wrapper]
                break
    state = tensor_state(raw, path, DINO_WHAT, DINO_SOURCE)
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("backbone.")
        if not key.startswith("head."):
            out[key] = value
    return out


def _vit_size(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Width, depth and heads of a ViT checkpoint when they differ from ViT-B (768 wide, 12 blocks, 12 heads): the
    width is ``cls_token``'s, the depth the number of ``blocks.<i>``, the heads width / 64 (timm's and DINO's ViTs
    all use 64-channel heads: ViT-S/8 384/6, ViT-B/8 768/12). A width that is no multiple of 64 is no such ViT: the
    architecture's own size is kept, and loading fails naming the file."""
    width = int(state["cls_token"].shape[-1]) if "cls_token" in state else 768
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")}) or 12
    if (width, depth) == (768, 12) or width % 64:
        return {}
    return {"embed_dim": width, "depth": depth, "num_heads": width // 64}


def load_dino_vit(path: str | Path, arch: str = DINO_ARCH, **model_kwargs) -> nn.Module:
    """A frozen timm ViT (eval, no gradients) of ``arch`` with the weights of ``path`` (``.pth`` or ``.safetensors``).

    ``model_kwargs`` override the architecture; without them a checkpoint of another width or depth than ViT-B/8
    (e.g. DINO's ViT-S/8) is built at its own size (:func:`_vit_size`).
    """
    import timm  # 1-2 s to import: only when the DINO loss is used

    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: object = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise WeightsFileError(f"{DINO_WHAT} {path} is not a readable safetensors file ({err}); download it "
                                   f"again: {DINO_SOURCE}") from err
    else:
        raw = read_torch_file(path, DINO_WHAT, DINO_SOURCE)
    state = _dino_state(raw, path)
    if not model_kwargs:
        model_kwargs = _vit_size(state)
    with torch.device("meta"):  # no random init of 86M weights: every tensor comes from the file
        vit = timm.create_model(arch, pretrained=False, num_classes=0, **model_kwargs)
    load_state_strict(vit, state, path, DINO_WHAT, DINO_SOURCE, assign=True)
    return vit.eval().requires_grad_(False)


class DinoFeatureLoss(nn.Module):
    """The LSI DINO loss ``(pred, target) -> scalar`` (module docstring); ``features(img) -> [B, 1 + N, D]``.

    The ViT is held outside the module tree (its 86M weights stay out of any checkpoint of a module that owns this
    loss) and follows the device of its input.
    """

    def __init__(self, checkpoint_path: str | Path, layer: int = DINO_LAYER, reduction: str = "sum",
                 arch: str = DINO_ARCH, model_kwargs: dict | None = None) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' (the official LSI loss) or 'mean', got {reduction!r}")
        vit = load_dino_vit(checkpoint_path, arch, **(model_kwargs or {}))
        if not 0 <= layer < len(vit.blocks):
            raise ValueError(f"layer {layer} is not a block of {arch} (0..{len(vit.blocks) - 1})")
        self._vit = [vit]
        self.layer, self.reduction = layer, reduction
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def vit(self) -> nn.Module:
        return self._vit[0]

    def preprocess(self, img: torch.Tensor) -> torch.Tensor:
        """``[B,3,R,R]`` in [-1,1] -> ``[B,3,224,224]`` ImageNet-normalised (torchvision Resize(224) + Normalize)."""
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
            raise ValueError(f"the DINO loss takes square RGB images [B,3,R,R] in [-1,1], got {tuple(img.shape)}")
        x = (img + 1) / 2
        if x.shape[-1] != DINO_RESOLUTION:
            x = F.interpolate(x, size=(DINO_RESOLUTION, DINO_RESOLUTION), mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean.to(x)) / self.std.to(x)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Tokens after block ``layer``: ``[B, 1 + (224/8)^2, D]``, CLS first (``[B, 785, 768]`` for ViT-B/8)."""
        vit = self.vit
        x = self.preprocess(img)
        if next(vit.parameters()).device != x.device:
            vit.to(x.device)
        (patches, prefix), = vit.forward_intermediates(x, indices=[self.layer], norm=False, output_fmt="NLC",
                                                       intermediates_only=True, return_prefix_tokens=True,
                                                       stop_early=True)
        return torch.cat([prefix, patches], dim=1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            goal = self.features(target)
        per_image = (self.features(pred) - goal).square().mean(dim=(1, 2))  # [B]
        return per_image.sum() if self.reduction == "sum" else per_image.mean()


def build_perceptual(kind: str, backbone_path: str | None = None, identity: nn.Module | None = None) -> nn.Module:
    """The perceptual distance ``kind``: ``lpips`` (local backbone) or ``identity-features`` (on ``identity``)."""
    if kind == "lpips":
        if not backbone_path:
            raise ValueError("perceptual='lpips' needs a local torchvision backbone checkpoint "
                             "(model.init_args.world.lpips_backbone or model.init_args.lpips_backbone_path); nothing "
                             "is downloaded. Or use perceptual='identity-features' (embedded world).")
        return LpipsLocal(backbone_path)
    if kind == "identity-features":
        if identity is None:
            raise ValueError("perceptual='identity-features' needs the world's identity network")
        return IdentityFeatureDistance(identity)
    raise ValueError(f"unknown perceptual loss {kind!r}; choose 'lpips' or 'identity-features'")
