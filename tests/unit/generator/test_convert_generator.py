"""``convert_generator`` / ``python -m lsi.generator.convert``: safetensors + JSON spec, read back identically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lsi.generator import GeneratorFileError, convert_generator, load_generator
from lsi.generator.convert import main
from lsi.generator.nvidia_pickle import read_network_pickle

FAMILIES = ["stylegan2", "stylegan2_cond_orig_numpy1_torch1", "stylegan3_r", "stylegan3_t_cond_margin10",
            "stylegan_xl_cond"]


@pytest.mark.parametrize("name", FAMILIES)
def test_round_trip_gives_the_same_network(tmp_path, network_pickles, name):
    out = convert_generator(network_pickles[name], tmp_path / f"{name}.safetensors")
    spec_doc = json.loads((tmp_path / f"{name}.json").read_text())
    assert spec_doc["format"] == "lsi-stylegan-generator" and spec_doc["source"]["file"] == f"{name}.pkl"
    # the tensors keep the official state_dict names, e.g. synthesis.<layer>.affine.weight
    official = read_network_pickle(network_pickles[name])["G_ema"].tensors()
    stored = load_file(str(out))
    assert set(stored) == set(official)
    assert all(torch.equal(stored[k], official[k]) for k in official)

    a, b = load_generator(network_pickles[name]), load_generator(out)
    assert b.spec == a.spec and b.feature_names == a.feature_names
    z = torch.randn(2, a.z_dim)
    c = torch.eye(a.c_dim)[:2] if a.c_dim else None
    ws = a.mapping(z, c, truncation_psi=0.8)
    assert torch.equal(b.mapping(z, c, truncation_psi=0.8), ws)
    assert torch.equal(b.synthesis(ws), a.synthesis(ws))
    assert torch.equal(load_generator(tmp_path / f"{name}.json").synthesis(ws), a.synthesis(ws))


def test_module_entry_point(tmp_path, network_pickles, capsys):
    assert main([str(network_pickles["stylegan3_t"]), str(tmp_path / "g.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "g.json").is_file()
    assert main([str(tmp_path / "missing.pkl"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.pkl does not exist" in err and "Traceback" not in err
    assert main([str(network_pickles["stylegan3_t"]), str(tmp_path / "g.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err


def test_module_entry_point_runs_as_python_dash_m(tmp_path, network_pickles):
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-m", "lsi.generator.convert", str(network_pickles["stylegan2"]),
                           str(tmp_path / "g.safetensors")], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert load_generator(tmp_path / "g.safetensors").kind == "stylegan2"


def test_broken_converted_files_are_named(tmp_path, network_pickles):
    out = convert_generator(network_pickles["stylegan2"], tmp_path / "g.safetensors")
    cfg = tmp_path / "g.json"
    doc = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(GeneratorFileError, match="g.json: format_version 99"):
        load_generator(out)
    cfg.unlink()
    with pytest.raises(GeneratorFileError, match="JSON spec .*g.json does not exist"):
        load_generator(out)
    cfg.write_text(json.dumps(doc))
    out.write_bytes(b"not safetensors")
    with pytest.raises(GeneratorFileError, match="g.safetensors is not a readable safetensors file"):
        load_generator(out)
    doc["spec"]["synthesis"]["blocks"][0]["conv1"]["out_channels"] += 1  # spec and tensors disagree
    convert_generator(network_pickles["stylegan2"], out)
    cfg.write_text(json.dumps(doc))
    with pytest.raises(GeneratorFileError, match="do not fit the stylegan2 layout"):
        load_generator(out)
