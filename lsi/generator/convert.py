"""Convert an NVIDIA network pickle's ``G_ema`` into our safe format (safetensors + JSON spec).

Usage: ``python -m lsi.generator.convert in.pkl out.safetensors`` (writes ``out.safetensors`` and ``out.json``).
The pickle is read as data only (no code from it runs); the written network is checked by rebuilding it.
Errors are printed without a traceback and the exit status is 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsi.generator.converted import config_path, write_converted
from lsi.generator.errors import GeneratorFileError
from lsi.generator.load import file_sha256, read_pickle_generator
from lsi.generator.loaded import StyleGANGenerator


def convert_generator(in_pkl: str | Path, out_path: str | Path) -> Path:
    """Write ``out_path`` (.safetensors) and its ``.json`` spec from the ``G_ema`` of ``in_pkl``; returns out_path."""
    in_pkl = Path(in_pkl)
    spec, tensors = read_pickle_generator(in_pkl)
    StyleGANGenerator(spec).load_tensors(tensors, str(in_pkl))  # refuse to write what we cannot rebuild
    source = {"file": in_pkl.name, "sha256": file_sha256(in_pkl)}
    return write_converted(out_path, spec, tensors, source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsi.generator.convert", description=__doc__.splitlines()[0])
    parser.add_argument("in_pkl", help="NVIDIA network pickle (StyleGAN2-ADA, StyleGAN3, StyleGAN-XL)")
    parser.add_argument("out", help="output .safetensors path; the JSON spec goes beside it")
    args = parser.parse_args(argv)
    try:
        out = convert_generator(args.in_pkl, args.out)
    except GeneratorFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} and {config_path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
