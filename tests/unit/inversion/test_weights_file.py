"""Safe reading of foreign torch files: legacy (non-zip) and zip formats, weights_only, clear errors."""

from __future__ import annotations

import builtins
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lsi.inversion.weights_file import (
    MissingWeightsFileError,
    WeightsFileError,
    load_state_strict,
    read_torch_file,
    tensor_state,
)
from tests.fixtures.legacy_torch_save import MAGIC_NUMBER, save_legacy


class Evil:
    """Unpickling it calls ``func(arg)``."""

    def __init__(self, func, arg) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


class _NoGlobals(pickle.Unpickler):
    """Reads plain data only: any global in the stream is refused (the magic number needs none)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def test_legacy_format_with_cuda_locations_reads_weights_only(tmp_path):
    state = OrderedDict(w=torch.randn(4, 3), b=torch.arange(5), h=torch.randn(2, 2).half(), t=torch.randn(3, 2).t())
    path = save_legacy(state, tmp_path / "legacy.pth", location="cuda:0")
    with open(path, "rb") as f:  # really the legacy layout: a pickled magic number, not a zip archive
        assert f.read(2) == b"\x80\x02" and _NoGlobals(f).load() == MAGIC_NUMBER
    loaded = read_torch_file(path, "test weights", "nowhere")
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(state)
    for k, v in state.items():
        assert loaded[k].device.type == "cpu" and loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)


def test_zip_format_reads(tmp_path):
    torch.save({"a": torch.ones(2)}, tmp_path / "new.pt")
    assert torch.equal(read_torch_file(tmp_path / "new.pt", "x", "y")["a"], torch.ones(2))


@pytest.mark.parametrize("legacy", [True, False])
def test_code_carrying_files_are_refused_without_running(tmp_path, legacy):
    marker = tmp_path / "pwned"
    evil = {"w": torch.ones(1), "x": Evil(builtins.exec, f"open({str(marker)!r}, 'w').write('ran')")}
    path = tmp_path / "evil.pth"
    if legacy:
        save_legacy(evil, path)
    else:
        torch.save(evil, path)
    with pytest.raises(WeightsFileError, match="cannot be read safely"):
        read_torch_file(path, "ArcFace weights", "somewhere")
    assert not marker.exists()


def test_missing_truncated_and_foreign_files_name_themselves(tmp_path):
    with pytest.raises(MissingWeightsFileError, match=r"IR-SE50.*nope\.pth does not exist.*Get it from the zoo"):
        read_torch_file(tmp_path / "nope.pth", "IR-SE50", "the zoo")
    assert issubclass(MissingWeightsFileError, FileNotFoundError)
    torch.save({"a": torch.ones(1000)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match=r"cut\.pt is not a readable torch file"):
        read_torch_file(tmp_path / "cut.pt", "encoder", "the zoo")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(WeightsFileError, match=r"text\.pt"):
        read_torch_file(tmp_path / "text.pt", "encoder", "the zoo")
    with pytest.raises(WeightsFileError, match="holds a list"):
        tensor_state([1, 2], tmp_path / "x.pt", "encoder", "the zoo")


def test_strict_load_fills_batch_counters_and_lists_mismatches(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    state = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_state_strict(fresh, state, "f.pth", "w", "s")
    assert torch.equal(fresh[0].weight, net[0].weight) and int(fresh[1].num_batches_tracked) == 0
    bad = dict(state)
    bad.pop("1.running_var")
    bad["0.weight"] = torch.zeros(4, 3, 5, 5)
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsFileError, match=r"f\.pth.*missing keys: 1\.running_var.*unexpected keys: "
                                               r"extra\.weight.*0\.weight: file \(4, 3, 5, 5\) vs network"):
        load_state_strict(fresh, bad, "f.pth", "w", "s")
