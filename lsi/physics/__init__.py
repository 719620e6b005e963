"""The physics room: what the single-pixel camera measures, and nothing learned beyond the masks.

* :mod:`lsi.physics.operator` - the measurement operator ``A`` (:func:`~lsi.physics.operator.measure`) and the
  optical encoder O with its learnable quantised masks;
* :mod:`lsi.physics.noise` - detector noise (shot, read, dark, ambient, ADC), shared by training and the rig
  simulator;
* :mod:`lsi.physics.patterns` - mask initialisations (uniform, random binary, Walsh-ordered Hadamard);
* :mod:`lsi.physics.mask_files` - the ``masks.npy`` + JSON sidecar file format.

Rank 0 of the layering (docs/architecture.md): imports nothing from the rest of the project.
"""
