"""Constant predictors: what P_A, P_S and P_L score without any measurement (the floor of Table 1).

Fitted on training batches, then scored on test batches with the same metrics as the heads:

- attributes: each attribute's majority value on the training split;
- segmentation: the per-pixel most frequent class of the training split (one fixed class map);
- landmarks: the mean training shape (68 points in [0, 1]).

A head that does not beat these has learned nothing from the latent.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from lsi.eval.metrics import NME, AttributeAccuracy, SegmentationF1

__all__ = ["ConstantPredictor", "constant_predictor_metrics"]


class ConstantPredictor:
    """Accumulates training statistics (:meth:`fit_batch`) and predicts the same output for every scene."""

    def __init__(self, num_classes: int = 19) -> None:
        self.num_classes = num_classes
        self.attr_sum: torch.Tensor | None = None
        self.attr_count: torch.Tensor | None = None
        self.class_counts: torch.Tensor | None = None   # [C,H,W]
        self.landmark_sum: torch.Tensor | None = None
        self.landmark_n = 0

    def fit_batch(self, batch: dict) -> None:
        """``batch``: ``attributes [B,A]`` in {0,1} (negative/NaN = unknown), ``segmentation [B,H,W]`` int64,
        ``landmarks [B,68,2]``; any of them may be absent."""
        if "attributes" in batch:
            a = batch["attributes"].float()
            known = (a >= 0) & torch.isfinite(a)
            s, c = torch.where(known, a, 0.0).sum(0), known.sum(0)
            self.attr_sum = s if self.attr_sum is None else self.attr_sum + s
            self.attr_count = c if self.attr_count is None else self.attr_count + c
        if "segmentation" in batch:
            seg = batch["segmentation"].long()
            valid = seg >= 0
            counts = (F.one_hot(seg.clamp(min=0), self.num_classes) * valid[..., None]).sum(0).permute(2, 0, 1)
            self.class_counts = counts if self.class_counts is None else self.class_counts + counts
        if "landmarks" in batch:
            pts = batch["landmarks"].float()
            ok = torch.isfinite(pts).flatten(1).all(1)
            s = pts[ok].sum(0)
            self.landmark_sum = s if self.landmark_sum is None else self.landmark_sum + s
            self.landmark_n += int(ok.sum())

    def predict(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` copies of the constant outputs: attribute probabilities ``[n,A]`` (0 or 1), class map
        ``[n,H,W]``, landmarks ``[n,68,2]``; only what was fitted."""
        out = {}
        if self.attr_sum is not None:
            majority = (self.attr_sum / self.attr_count.clamp(min=1) > 0.5).float()
            out["attributes"] = majority.expand(n, -1)
        if self.class_counts is not None:
            out["segmentation"] = self.class_counts.argmax(0).expand(n, -1, -1)
        if self.landmark_n:
            out["landmarks"] = (self.landmark_sum / self.landmark_n).expand(n, -1, -1)
        return out


def constant_predictor_metrics(train_batches: Iterable[dict], test_batches: Iterable[dict],
                               num_classes: int = 19) -> dict[str, float]:
    """Fit :class:`ConstantPredictor` on ``train_batches``, score it on ``test_batches``:
    ``{"attr_acc", "seg_f1", "nme"}`` (only those whose ground truth the batches carry)."""
    model = ConstantPredictor(num_classes)
    for batch in train_batches:
        model.fit_batch(batch)
    acc, f1, nme = AttributeAccuracy(input_type="probs"), SegmentationF1(num_classes), NME()
    seen: set[str] = set()
    for batch in test_batches:
        n = next(len(batch[k]) for k in ("attributes", "segmentation", "landmarks", "image") if k in batch)
        pred = model.predict(n)
        if "attributes" in pred and "attributes" in batch:
            acc.update(pred["attributes"], batch["attributes"])
            seen.add("attr_acc")
        if "segmentation" in pred and "segmentation" in batch:
            target = batch["segmentation"]
            seg = pred["segmentation"]
            if seg.shape[-2:] != target.shape[-2:]:
                seg = F.interpolate(seg[:, None].float(), size=target.shape[-2:], mode="nearest")[:, 0].long()
            f1.update(seg, target)
            seen.add("seg_f1")
        if "landmarks" in pred and "landmarks" in batch:
            nme.update(pred["landmarks"], batch["landmarks"])
            seen.add("nme")
    results = {"attr_acc": acc, "seg_f1": f1, "nme": nme}
    return {k: float(m.compute()) for k, m in results.items() if k in seen}
