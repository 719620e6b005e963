"""Inversion encoders E: image -> W+ latent (offset from ``w_avg``) of a frozen generator.

:mod:`lsi.inversion.embedded` is the small pSp-style encoder of the embedded world.
"""

from lsi.inversion.embedded import EncoderConfig, InversionEncoder, MapToStyle, ResBlock

__all__ = ["EncoderConfig", "InversionEncoder", "MapToStyle", "ResBlock"]
