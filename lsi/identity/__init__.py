"""Identity networks: face image -> unit embedding, used for the identity loss and the identity match rate.

:mod:`lsi.identity.embedded` is the ArcFace-style network of the embedded world.
"""

from lsi.identity.embedded import ArcMarginHead, IdentityConfig, IdentityNet

__all__ = ["ArcMarginHead", "IdentityConfig", "IdentityNet"]
