"""The reconstruction-evaluation callback refuses modules without an LSI encoder (moved from the heads' tests)."""

import pytest
import torch

from lsi.models.callbacks import find_lsi


def test_find_lsi_rejects_other_modules():
    with pytest.raises(ValueError, match="LatentImagingModule"):
        find_lsi(torch.nn.Linear(1, 1))
