"""The frozen world every LSI module shares: generator G, inversion encoder E and identity network.

* :mod:`lsi.world.embedded` - the shipped embedded weights (``lsi/weights/*.pt``) and their loaders;
* :mod:`lsi.world.frozen` - one frozen world per process (:func:`~lsi.world.frozen.frozen_world`);
* :mod:`lsi.world.perceptual` - perceptual distances that never download anything.
"""
