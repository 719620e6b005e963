"""Identity networks: face image -> unit embedding, used for the identity loss and the identity match rate.

* :mod:`lsi.identity.embedded` - the ArcFace-style network of the embedded world;
* :mod:`lsi.identity.arcface` - IR-SE50 ArcFace with pSp's ID-loss preprocessing and :func:`load_arcface` for
  ``model_ir_se50.pth``.
"""

from lsi.identity.arcface import ArcFaceIRSE50, identity_loss, load_arcface
from lsi.identity.embedded import ArcMarginHead, IdentityConfig, IdentityNet

__all__ = ["ArcFaceIRSE50", "ArcMarginHead", "IdentityConfig", "IdentityNet", "identity_loss", "load_arcface"]
