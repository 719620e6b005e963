"""The label vocabulary every room shares: attribute names, segmentation classes and their colours.

Neutral ground (rank 0 of the layering, docs/architecture.md): the datasets produce these labels, the heads and
metrics read them, the figures colour them, and none of those has to import another to agree on them.

* :data:`EMBEDDED_ATTRIBUTE_NAMES` - the 21 binary attributes of the embedded procedural face world
  (a CelebA-named subset, in the world's order);
* :data:`CELEBA_ATTRIBUTE_NAMES` - CelebA's 40 attributes, in the order of its annotation files;
* :data:`CELEBAMASK_CLASSES` - the 19 CelebAMask-HQ segmentation classes (the embedded world uses them too);
* :data:`SEGMENTATION_PALETTE` - one RGB colour per class, ``[19, 3]`` uint8;
* :data:`AFHQ_CATEGORIES` - AFHQ's three animal classes (its folder names), the paper's second domain.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AFHQ_CATEGORIES", "CELEBA_ATTRIBUTE_NAMES", "CELEBAMASK_CLASSES", "EMBEDDED_ATTRIBUTE_NAMES",
           "SEGMENTATION_PALETTE"]

EMBEDDED_ATTRIBUTE_NAMES: tuple[str, ...] = (
    "Male", "Young", "Smiling", "Eyeglasses", "No_Beard", "Mustache", "Bald", "Bangs", "Black_Hair",
    "Blond_Hair", "Brown_Hair", "Gray_Hair", "Mouth_Slightly_Open", "Wearing_Hat", "Pale_Skin",
    "Wearing_Earrings", "Wearing_Necklace", "Wearing_Lipstick", "Big_Nose", "Big_Lips", "Bushy_Eyebrows",
)

CELEBA_ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

#: 0 = background, then the 18 annotated parts in the order in which later parts overwrite earlier ones when
#: CelebAMask-HQ's per-part masks are merged. ``l_*`` is the part on the image-left side (the eye whose iBUG
#: landmarks are 36-41), ``r_*`` the image-right one; ``ear_r`` = earring, ``neck_l`` = necklace.
CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)

#: One colour per :data:`CELEBAMASK_CLASSES` entry (background black; overlays draw it transparent).
SEGMENTATION_PALETTE: np.ndarray = np.array([
    [0, 0, 0], [204, 153, 102], [255, 102, 0], [120, 120, 255], [0, 102, 255], [0, 204, 255], [153, 51, 0],
    [204, 102, 51], [255, 204, 153], [255, 153, 153], [255, 0, 102], [204, 0, 0], [153, 0, 51], [96, 64, 32],
    [255, 255, 0], [255, 0, 255], [0, 255, 153], [153, 204, 0], [51, 102, 153],
], dtype=np.uint8)
SEGMENTATION_PALETTE.setflags(write=False)

#: AFHQ's classes in the order of its folders ``train|val/{cat,dog,wild}``; an item's ``category`` indexes this.
AFHQ_CATEGORIES: tuple[str, ...] = ("cat", "dog", "wild")
