"""Tiny network pickles in the real NVIDIA layouts, written once per session by our own fixture writer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fixture writer modules beside this file

import stylegan_fixtures as sf  # noqa: E402

# name -> (writer, kwargs): every family and the file variants the reader must accept
NETWORKS = {
    "stylegan2": (sf.write_stylegan2, {}),
    "stylegan2_cond_orig_numpy1_torch1": (sf.write_stylegan2, dict(c_dim=3, architecture="orig", style="numpy1",
                                                                   torch_gen=1, conv_clamp=None)),
    "stylegan3_t": (sf.write_stylegan3, {}),
    "stylegan3_r": (sf.write_stylegan3, dict(radial=True)),
    "stylegan3_t_cond_margin10": (sf.write_stylegan3, dict(c_dim=2, img_resolution=32, num_layers=6,
                                                           margin_size=10, channel_base=1024, channel_max=64)),
    "stylegan_xl": (sf.write_stylegan_xl, {}),
    "stylegan_xl_cond": (sf.write_stylegan_xl, dict(c_dim=3)),
}


@pytest.fixture(scope="session")
def network_pickles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nvidia_pickles")
    return {name: writer(root / f"{name}.pkl", **kw) for name, (writer, kw) in NETWORKS.items()}
