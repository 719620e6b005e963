"""Constant predictors (the floor of Table 1): hand-computed scores."""

import pytest
import torch

from lsi.eval.floors import ConstantPredictor, constant_predictor_metrics


def _train():
    attributes = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])       # majority: (1, 0)
    seg = torch.tensor([[[0, 1]], [[0, 1]], [[1, 1]]])                      # per-pixel mode: [[0, 1]]
    landmarks = torch.tensor([[[0.0, 0.0], [1.0, 1.0]], [[0.2, 0.2], [1.0, 1.0]], [[0.1, 0.1], [1.0, 1.0]]])
    return {"attributes": attributes, "segmentation": seg, "landmarks": landmarks}


def test_constant_outputs_are_the_training_statistics():
    model = ConstantPredictor(num_classes=2)
    model.fit_batch(_train())
    pred = model.predict(4)
    assert pred["attributes"].tolist() == [[1.0, 0.0]] * 4
    assert pred["segmentation"].tolist() == [[[0, 1]]] * 4
    assert torch.allclose(pred["landmarks"][0], torch.tensor([[0.1, 0.1], [1.0, 1.0]]))


def test_scores_on_a_test_set():
    # attributes: test truth (1,1) and (0,0) vs constant (1,0): each attribute right once of twice -> 0.5
    # segmentation: truth [[0,0]] and [[0,1]] vs [[0,1]]: class 0 TP2 FN1 -> 4/5, class 1 TP1 FP1 -> 2/3
    # landmarks: gt bbox diagonal of [[0,0],[1,1]] = sqrt 2; error of the mean shape = (|0.1,0.1| + 0)/2
    test = {"attributes": torch.tensor([[1.0, 1.0], [0.0, 0.0]]), "segmentation": torch.tensor([[[0, 0]], [[0, 1]]]),
            "landmarks": torch.tensor([[[0.0, 0.0], [1.0, 1.0]]] * 2)}
    scores = constant_predictor_metrics([_train()], [test], num_classes=2)
    assert scores["attr_acc"] == pytest.approx(0.5)
    assert scores["seg_f1"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert scores["nme"] == pytest.approx(100 * (0.1 * 2 ** 0.5 / 2) / 2 ** 0.5)


def test_only_what_the_batches_carry_is_scored():
    only_attr = {"attributes": torch.tensor([[1.0], [1.0]])}
    assert set(constant_predictor_metrics([only_attr], [only_attr])) == {"attr_acc"}
