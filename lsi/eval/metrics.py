"""Evaluation metrics of the LSI paper (Table 1) as torchmetrics ``Metric`` classes (states sync under DDP).

* :class:`IdentityMatchRate` — share of (original, reconstruction) pairs judged the same person, in both
  conventions: ``match_rate`` counts pairs without a detected face as failures; ``match_rate_detected`` leaves them
  out of the denominator, as DeepFace.verify scripts do (the paper's numbers: a pair whose face detection fails
  raises and is skipped); ``no_face`` counts them. DeepFace cosine thresholds, as in the paper:
  :data:`DLIB_COSINE_THRESHOLD` = 0.07, :data:`VGGFACE_COSINE_THRESHOLD` = 0.68.
* :func:`threshold_at_far` — verification threshold of an embedder at a false-accept rate;
  :func:`impostor_distances` — the cosine distances of all pairs of different people (its impostor set).
* :func:`identification_top1` — top-1 identification against a one-image-per-identity gallery.
* :class:`AttributeAccuracy` — mean over attributes of the per-attribute binary accuracy.
* :class:`SegmentationF1` — dataset-level per-class F1, averaged over the classes present in the ground truth
  (``average_over="target"``) or, as the official LSI evaluation does, over all classes with an absent class
  counting 0 (``average_over="all"``).
* :class:`NME` — landmark error normalised by the ground-truth bounding-box diagonal, times alpha (Eq. 4).
* :class:`FID` — torchmetrics' Fréchet Inception Distance with local Inception weights or a custom feature net.
* :func:`psnr` — per-image peak signal-to-noise ratio (dB); :func:`ssim` — per-image structural similarity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image.fid import FrechetInceptionDistance

from lsi.eval.face_recognition.fid_features import FeatureModule, resolve_inception_weights

DLIB_COSINE_THRESHOLD = 0.07
VGGFACE_COSINE_THRESHOLD = 0.68
_DISTANCES = ("cosine", "euclidean", "euclidean_l2")


def psnr(images: Tensor, reference: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image PSNR in dB, ``[B, ...], [B, ...] -> [B]``: ``10 log10(1 / MSE)`` of the difference in units of
    ``data_range`` (2 for images in [-1, 1]); the MSE is clamped at 1e-10, so identical images give 100 dB."""
    mse = ((images - reference) / data_range).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def ssim(images: Tensor, reference: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image SSIM ``[B, C, H, W], [B, C, H, W] -> [B]`` (Gaussian window 11, sigma 1.5; torchmetrics' SSIM of
    Wang et al. 2004, channels averaged); ``data_range`` is 1 for images in [0, 1], 2 for [-1, 1]."""
    if images.shape != reference.shape or images.ndim != 4:
        raise ValueError(f"ssim needs two [B,C,H,W] batches of one shape, got {tuple(images.shape)} and "
                         f"{tuple(reference.shape)}")
    return structural_similarity_index_measure(images.float(), reference.float(), data_range=data_range,
                                               reduction="none")


def pair_distance(a: Tensor, b: Tensor, distance: str = "cosine") -> Tensor:
    """Row-wise distance ``[B,E],[B,E] -> [B]`` (float64): cosine = 1 - cos, euclidean, euclidean_l2."""
    a, b = a.double(), b.double()
    if distance == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-12)
    if distance == "euclidean_l2":
        a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    elif distance != "euclidean":
        raise ValueError(f"unknown distance {distance!r}; expected one of {_DISTANCES}")
    return (a - b).norm(dim=-1)


class IdentityMatchRate(Metric):
    """Fraction of image pairs judged the same person: ``distance(emb_orig, emb_recon) <= threshold``.

    ``update(emb_orig [B,E] | None, emb_recon [B,E] | None, valid [B] bool | None)``: ``valid`` marks pairs
    where a face was found in both images (None: all valid); ``None`` embeddings mean no face in the whole
    batch. Missing faces count as failures in ``match_rate`` and are left out of ``match_rate_detected``.
    ``compute() -> {"match_rate", "match_rate_detected" (NaN when no pair had faces), "no_face_rate", "no_face"
    (count), "mean_distance" (over valid pairs), "n"}``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, threshold: float, distance: str = "cosine", **kwargs) -> None:
        super().__init__(**kwargs)
        if distance not in _DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; expected one of {_DISTANCES}")
        self.threshold, self.distance = float(threshold), distance
        for name in ("matches", "no_face", "total"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("distance_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    @classmethod
    def dlib(cls, **kwargs) -> IdentityMatchRate:
        return cls(DLIB_COSINE_THRESHOLD, "cosine", **kwargs)

    @classmethod
    def vggface(cls, **kwargs) -> IdentityMatchRate:
        return cls(VGGFACE_COSINE_THRESHOLD, "cosine", **kwargs)

    def update(self, emb_orig: Tensor | None, emb_recon: Tensor | None, valid: Tensor | None = None) -> None:
        ref = emb_orig if emb_orig is not None else emb_recon
        if ref is None and valid is None:
            raise ValueError("IdentityMatchRate.update needs an embedding batch or a `valid` mask to know B")
        n = ref.shape[0] if ref is not None else valid.shape[0]
        dev = self.total.device
        ok = torch.ones(n, dtype=torch.bool, device=dev) if valid is None else valid.bool().to(dev)
        if ok.shape != (n,):
            raise ValueError(f"valid must have shape [{n}], got {tuple(ok.shape)}")
        if emb_orig is None or emb_recon is None:
            ok = torch.zeros_like(ok)
        self.total += n
        self.no_face += int((~ok).sum())
        if ok.any():
            if emb_orig.shape != emb_recon.shape or emb_orig.ndim != 2:
                raise ValueError(f"embeddings must both be [B,E]; got {tuple(emb_orig.shape)} and "
                                 f"{tuple(emb_recon.shape)}")
            d = pair_distance(emb_orig[ok.to(emb_orig.device)], emb_recon[ok.to(emb_recon.device)], self.distance)
            self.matches += int((d <= self.threshold).sum())
            self.distance_sum += d.sum().to(self.distance_sum.device)

    def compute(self) -> dict[str, Tensor]:
        n = self.total.clamp_min(1).double()
        valid = (self.total - self.no_face).double()
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=self.distance_sum.device)
        return {
            "match_rate": self.matches.double() / n,
            "match_rate_detected": self.matches.double() / valid if valid > 0 else nan,
            "no_face_rate": self.no_face.double() / n,
            "no_face": self.no_face.clone(),
            "mean_distance": self.distance_sum / valid if valid > 0 else nan,
            "n": self.total.clone(),
        }


def first_of_each_identity(ids: Tensor) -> Tensor:
    """Bool mask ``[N]`` of the first item of each identity in ``ids [N]``: the one-image-per-person gallery."""
    first = torch.zeros(len(ids), dtype=torch.bool)
    seen: set[int] = set()
    for i, ident in enumerate(ids.tolist()):
        if ident not in seen:
            first[i] = True
            seen.add(ident)
    return first


def identification_top1(gallery: Tensor, gallery_ids: Tensor, probes: Tensor, probe_ids: Tensor) -> float:
    """Top-1 accuracy of nearest-gallery (cosine) identification: ``probes [P,E]`` against ``gallery [G,E]``.

    Stricter than the pair match: a probe must be closer to its own person's gallery image than to every other
    person's. The protocol of ``lsi test`` and the embedded-world report: gallery = the first original of each
    test identity (:func:`first_of_each_identity`), probes = the other test images (or their reconstructions).
    """
    if len(gallery) == 0 or len(probes) == 0:
        return float("nan")
    sim = nn.functional.normalize(probes, dim=1) @ nn.functional.normalize(gallery, dim=1).t()
    return (gallery_ids.to(sim.device)[sim.argmax(1)] == probe_ids.to(sim.device)).float().mean().item()


def impostor_distances(embeddings: Tensor, ids: Tensor | None = None) -> Tensor:
    """Cosine distances ``[P]`` (float64) of all pairs ``i < j`` of ``embeddings [N,E]`` that show different people:
    ``ids [N]`` differ (pairs with an unknown id, ``< 0``, are left out); without ``ids`` every pair of different
    images counts (the usual case for CelebA-HQ test sets, whose 2,000 images show almost as many people)."""
    emb = nn.functional.normalize(embeddings.detach().double(), dim=1)
    i, j = torch.triu_indices(len(emb), len(emb), offset=1)
    keep = torch.ones(len(i), dtype=torch.bool)
    if ids is not None:
        ids = torch.as_tensor(ids).cpu()
        keep = (ids[i] != ids[j]) & (ids[i] >= 0) & (ids[j] >= 0)
    i, j = i[keep], j[keep]
    return 1.0 - (emb[i.to(emb.device)] * emb[j.to(emb.device)]).sum(1)


def verification_rates(genuine: Tensor, impostor: Tensor, threshold: float) -> tuple[float, float]:
    """(true-accept rate on genuine distances, false-accept rate on impostor distances) at ``d <= threshold``."""
    return float((genuine <= threshold).double().mean()), float((impostor <= threshold).double().mean())


def threshold_at_far(genuine: Tensor, impostor: Tensor, far: float = 0.01) -> float:
    """Largest-margin cosine-distance threshold whose false-accept rate on ``impostor`` is at most ``far``.

    Pairs are accepted when ``distance <= threshold``. With impostor distances sorted ascending and
    ``k = floor(far * N)`` false accepts allowed, any threshold below the (k+1)-th smallest impostor distance
    ``i_k`` qualifies, and the highest one maximises the true-accept rate. The threshold returned is the
    midpoint between ``i_k`` and the largest distance (genuine, or one of the k allowed impostors) below it,
    so it sits in the gap rather than on a sample; if nothing lies below ``i_k`` it is just below ``i_k``.
    If ``far`` allows every impostor, the largest distance observed is returned.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}")
    imp = torch.sort(impostor.detach().double().flatten().cpu()).values
    gen = genuine.detach().double().flatten().cpu()
    if imp.numel() == 0:
        raise ValueError("threshold_at_far needs at least one impostor distance")
    k = math.floor(far * imp.numel() + 1e-9)
    if k >= imp.numel():
        return float(torch.cat([imp, gen]).max())
    upper = imp[k]
    below = torch.cat([imp[:k], gen[gen < upper]])
    below = below[below < upper]
    if below.numel() == 0:
        return float(torch.nextafter(upper, torch.tensor(-math.inf, dtype=torch.float64)))
    return float((below.max() + upper) / 2)


class AttributeAccuracy(Metric):
    """Mean over attributes of per-attribute accuracy for binary attributes.

    ``update(preds [B,A], target [B,A])``: ``preds`` are logits (positive if > 0) or probabilities (positive if
    > ``threshold``); ``input_type="auto"`` treats a batch with any value outside [0,1] as logits (as
    torchmetrics does). Targets in {0,1}; negative or NaN targets (unknown labels) are ignored.
    ``compute()`` -> scalar mean over attributes that have at least one label; :meth:`per_attribute` -> ``[A]``.
    ``num_attributes=None`` sizes the states on the first update (give it explicitly under DDP, where a rank
    without updates would otherwise sync an empty state).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_attributes: int | None = None, input_type: str = "auto", threshold: float = 0.5,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if input_type not in ("auto", "logits", "probs"):
            raise ValueError(f"input_type must be 'auto', 'logits' or 'probs', got {input_type!r}")
        self.input_type, self.threshold = input_type, float(threshold)
        size = num_attributes or 0
        self.add_state("correct", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or preds.ndim != 2:
            raise ValueError(f"preds and target must both be [B,A]; got {tuple(preds.shape)} and {tuple(target.shape)}")
        if self.count.numel() == 0:
            self.correct = torch.zeros(preds.shape[1], dtype=torch.long, device=self.count.device)
            self.count = torch.zeros(preds.shape[1], dtype=torch.long, device=self.count.device)
        if preds.shape[1] != self.count.numel():
            raise ValueError(f"expected {self.count.numel()} attributes, got {preds.shape[1]}")
        logits = self.input_type == "logits" or (
            self.input_type == "auto" and bool(((preds < 0) | (preds > 1)).any()))
        positive = preds > 0 if logits else preds > self.threshold
        known = torch.isfinite(target) & (target >= 0)
        hit = (positive == (target > 0.5)) & known
        self.correct += hit.sum(0).to(self.correct.device)
        self.count += known.sum(0).to(self.count.device)

    def per_attribute(self) -> Tensor:
        """Accuracy per attribute ``[A]`` (NaN where no label was seen)."""
        return torch.where(self.count > 0, self.correct.double() / self.count.clamp_min(1).double(),
                           torch.full_like(self.count, float("nan"), dtype=torch.float64))

    def compute(self) -> Tensor:
        acc = self.per_attribute()
        acc = acc[~torch.isnan(acc)]
        return acc.mean() if acc.numel() else torch.tensor(float("nan"), dtype=torch.float64)


class SegmentationF1(Metric):
    """Dataset-level per-class F1 = 2TP / (2TP + FP + FN) from an accumulated confusion matrix.

    ``update(preds [B,H,W] labels | [B,C,H,W] scores, target [B,H,W])``. Pixels whose target equals
    ``ignore_index`` or is negative (unknown) are ignored. ``compute()`` = mean F1 over the classes present in
    the ground truth of the whole evaluated set (``average_over="target"``, the usual choice) or present in the
    target or the prediction (``"union"``) or over **all** ``num_classes`` classes with a class absent from both
    counting F1 = 0 (``"all"``: the official LSI evaluation's "total" row, mean of the per-class F1 with an epsilon
    in every denominator); ``include_background=False`` drops class 0 from the mean.
    :meth:`per_class` -> ``[C]`` F1 (NaN for classes absent from both).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int = 19, ignore_index: int | None = None, average_over: str = "target",
                 include_background: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if average_over not in ("target", "union", "all"):
            raise ValueError(f"average_over must be 'target', 'union' or 'all', got {average_over!r}")
        self.num_classes, self.ignore_index = int(num_classes), ignore_index
        self.average_over, self.include_background = average_over, include_background
        self.add_state("confmat", default=torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(1)
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} shapes differ")
        preds, target = preds.long().flatten(), target.long().flatten()
        keep = target >= 0
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        preds, target = preds[keep], target[keep]
        c = self.num_classes
        if target.numel() and (int(target.max()) >= c or int(preds.min()) < 0 or int(preds.max()) >= c):
            raise ValueError(f"labels must lie in [0, {c}); got target max {int(target.max())}, "
                             f"pred range [{int(preds.min())}, {int(preds.max())}]")
        self.confmat += torch.bincount(target * c + preds, minlength=c * c).reshape(c, c).to(self.confmat.device)

    def per_class(self) -> Tensor:
        tp = self.confmat.diag().double()
        fp = self.confmat.sum(0).double() - tp
        fn = self.confmat.sum(1).double() - tp
        denom = 2 * tp + fp + fn
        return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.full_like(tp, float("nan")))

    def compute(self) -> Tensor:
        f1 = self.per_class()
        if self.average_over == "all":
            f1 = torch.nan_to_num(f1, nan=0.0)
            return f1[int(not self.include_background):].mean()
        present = self.confmat.sum(1) > 0
        if self.average_over == "union":
            present |= self.confmat.sum(0) > 0
        if not self.include_background:
            present[0] = False
        return f1[present].mean() if present.any() else torch.tensor(float("nan"), dtype=torch.float64)


class NME(Metric):
    """Normalised mean landmark error, paper Eq. 4: ``alpha/N * sum_i mean_k ||p_ik - g_ik|| / d_i``.

    ``d_i = sqrt(w^2 + h^2)`` of the bounding box of image i's ground-truth points. ``update(pred [B,K,2],
    gt [B,K,2], valid [B] bool | None)``; images with non-finite ground truth or ``valid=False`` are skipped.
    Coordinates may be pixels or normalised (the ratio is scale free for square images).
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, alpha: float = 100.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.add_state("error_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> None:
        if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
            raise ValueError(f"pred and gt must both be [B,K,2]; got {tuple(pred.shape)} and {tuple(gt.shape)}")
        pred, gt = pred.double(), gt.double()
        ok = torch.isfinite(gt).flatten(1).all(1) & torch.isfinite(pred).flatten(1).all(1)
        if valid is not None:
            ok &= valid.bool().to(ok.device)
        if not ok.any():
            return
        pred, gt = pred[ok], gt[ok]
        extent = gt.amax(1) - gt.amin(1)          # [n,2] (w, h)
        diag = extent.norm(dim=-1)
        if bool((diag <= 0).any()):
            raise ValueError("ground-truth landmarks with a zero-size bounding box cannot normalise NME")
        per_image = (pred - gt).norm(dim=-1).mean(1) / diag
        self.error_sum += per_image.sum().to(self.error_sum.device)
        self.count += per_image.numel()

    def compute(self) -> Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.alpha * self.error_sum / self.count


class FID(FrechetInceptionDistance):
    """Fréchet distance between feature distributions of real and generated images (torchmetrics' FID).

    * Real world (``feature`` an int: 64/192/768/2048): torch-fidelity's InceptionV3 from the LOCAL file
      ``pt_inception-2015-12-05-6726825d.pth`` given by ``weights_path`` (or found in the torch hub cache);
      missing -> ``FileNotFoundError`` explaining where to get it. Resizing uses ``antialias=False`` (the
      usual TF-compatible numbers). With ``normalize=True`` images are float in [0,1], else uint8.
    * Embedded world: ``feature`` is any ``nn.Module`` or callable mapping a batch of images to ``[B,F]``
      features (e.g. the identity network's penultimate features). Images are passed to it unchanged;
      give ``num_features`` to avoid a dummy forward pass of shape ``input_img_size``.

    ``update(images, real: bool)`` then ``compute()`` -> scalar FID.
    """

    def __init__(self, feature: int | nn.Module | Callable[[Tensor], Tensor] = 2048,
                 weights_path: str | Path | None = None, normalize: bool = True, num_features: int | None = None,
                 reset_real_features: bool = True, input_img_size: tuple[int, int, int] = (3, 256, 256),
                 **kwargs) -> None:
        if isinstance(feature, bool) or not (isinstance(feature, int) or callable(feature)):
            raise TypeError(f"feature must be an int (Inception layer) or a module/callable, got {type(feature)}")
        if isinstance(feature, int):
            path = resolve_inception_weights(weights_path)
            super().__init__(feature=feature, reset_real_features=reset_real_features, normalize=normalize,
                             feature_extractor_weights_path=str(path), antialias=False, **kwargs)
        else:
            if num_features is not None or not isinstance(feature, nn.Module):
                feature = FeatureModule(feature, num_features)
            super().__init__(feature=feature, reset_real_features=reset_real_features, normalize=normalize,
                             input_img_size=input_img_size, **kwargs)
