"""``python -m lsi.cli.check_ratio RATIO``: exit 0 if RATIO is a supported compression ratio, else say why (exit 2).

``make train RATIO=...`` runs it first, so ``RATIO=abc`` or ``RATIO=500`` ends with one clear line, not a traceback.
"""

from __future__ import annotations

import sys

#: compression ratios of the 256x256 DMD grid that ``make train`` / ``make table`` support (d = 65536 / ratio).
SUPPORTED = tuple(2**k for k in range(7, 15))


def check_ratio(text: str) -> int:
    """The ratio as an int; raises ValueError naming the supported values."""
    choices = " ".join(map(str, SUPPORTED))
    try:
        ratio = int(text)
    except ValueError:
        raise ValueError(f"RATIO={text!r} is not a whole number; use one of {choices} (d = 65536/RATIO)") from None
    if ratio not in SUPPORTED:
        raise ValueError(f"RATIO={ratio} is not supported: use one of {choices} (d = 65536/RATIO masks)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lsi.cli.check_ratio RATIO", file=sys.stderr)
        return 2
    try:
        check_ratio(args[0])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
