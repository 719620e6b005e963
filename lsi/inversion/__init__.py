"""Inversion encoders E: image -> W+ latent of a frozen generator.

* :mod:`lsi.inversion.embedded` - the small pSp-style encoder of the embedded world (returns offsets from ``w_avg``);
* :mod:`lsi.inversion.psp` - pSp's GradualStyleEncoder on IR-SE-50 and :func:`load_psp_encoder` for pSp / LSI
  checkpoints (returns the absolute W+);
* :mod:`lsi.inversion.ir_se` - the IR-SE-50 backbone shared with IR-SE50 ArcFace (:mod:`lsi.identity.arcface`);
* :mod:`lsi.inversion.weights_file` - safe reading of foreign torch weight files with errors that name them.
"""

from lsi.inversion.embedded import EncoderConfig, InversionEncoder, MapToStyle, ResBlock
from lsi.inversion.psp import GradualStyleEncoder, load_psp_encoder
from lsi.inversion.weights_file import MissingWeightsFileError, WeightsFileError

__all__ = ["EncoderConfig", "GradualStyleEncoder", "InversionEncoder", "MapToStyle", "MissingWeightsFileError",
           "ResBlock", "WeightsFileError", "load_psp_encoder"]
