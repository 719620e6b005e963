"""lsi.labels is the one vocabulary: the datasets, the heads and the figures read the same names and colours."""

import numpy as np

from datamodules.celeba import ATTRIBUTE_NAMES_CELEBA, SEG_CLASSES
from datamodules.faces import ATTRIBUTE_NAMES
from datamodules.faces import SEG_CLASSES as WORLD_SEG_CLASSES
from lsi.labels import CELEBA_ATTRIBUTE_NAMES, CELEBAMASK_CLASSES, EMBEDDED_ATTRIBUTE_NAMES, SEGMENTATION_PALETTE
from lsi.report.figures import segmentation_palette


def test_datasets_use_the_shared_vocabulary():
    assert ATTRIBUTE_NAMES is EMBEDDED_ATTRIBUTE_NAMES and len(EMBEDDED_ATTRIBUTE_NAMES) == 21
    assert ATTRIBUTE_NAMES_CELEBA is CELEBA_ATTRIBUTE_NAMES and len(CELEBA_ATTRIBUTE_NAMES) == 40
    assert set(EMBEDDED_ATTRIBUTE_NAMES) <= set(CELEBA_ATTRIBUTE_NAMES)  # the world's attributes are CelebA's
    assert SEG_CLASSES is CELEBAMASK_CLASSES and WORLD_SEG_CLASSES is CELEBAMASK_CLASSES
    assert len(CELEBAMASK_CLASSES) == 19 and CELEBAMASK_CLASSES[0] == "background"


def test_one_palette_with_a_distinct_colour_per_class():
    assert SEGMENTATION_PALETTE.shape == (19, 3) and SEGMENTATION_PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in SEGMENTATION_PALETTE}) == 19
    np.testing.assert_allclose(segmentation_palette(19) * 255, SEGMENTATION_PALETTE)
    assert not SEGMENTATION_PALETTE.flags.writeable
