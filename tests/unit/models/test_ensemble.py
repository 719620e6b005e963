"""D_theta ensembles: the mean of independently initialised members, one linear path, one interface."""

from __future__ import annotations

import pytest
import torch

from lsi.models.digital_encoder import DigitalEncoder
from lsi.models.ensemble import DigitalEnsemble, build_digital_encoder

CFG = {"d_in": 8, "num_ws": 4, "w_dim": 6, "hidden": 16, "depths": (1, 1, 1)}


def test_single_member_is_a_plain_encoder_with_unchanged_keys():
    one = build_digital_encoder(**CFG)
    assert isinstance(one, DigitalEncoder)
    assert set(one.state_dict()) == set(DigitalEncoder(**CFG).state_dict())


def test_mean_of_members_and_shared_linear_path():
    torch.manual_seed(0)
    ens = build_digital_encoder(members=3, linear_path=True, **CFG)
    assert isinstance(ens, DigitalEnsemble) and len(ens.members) == 3
    first, second = ens.members[0], ens.members[1]
    assert not torch.equal(first.level_groups[0].stem_weight, second.level_groups[0].stem_weight)  # independent
    y = torch.randn(5, 8)
    assert torch.allclose(ens(y), torch.stack([m(y) for m in ens.members]).mean(0))
    w, b = torch.randn(24, 8), torch.randn(24)
    ens.set_linear_path(w, b)
    assert torch.allclose(ens(y) - ens.nonlinear(y), (y @ w.T + b).view(5, 4, 6), atol=1e-5)
    before = ens.state_dict()["members.1.level_groups.0.stem_weight"].clone()
    ens.reinitialise(seed=7)
    assert not torch.equal(before, ens.members[1].level_groups[0].stem_weight)
    assert ens.config["members"] == 3 and (ens.d_in, ens.num_ws, ens.w_dim) == (8, 4, 6)


def test_invalid_member_counts():
    with pytest.raises(ValueError, match="members must be >= 1"):
        build_digital_encoder(members=0, **CFG)
    with pytest.raises(ValueError, match="members >= 2"):
        DigitalEnsemble(1, **CFG)
