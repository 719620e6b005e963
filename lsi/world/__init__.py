"""The frozen world every LSI module shares: generator G, inversion encoder E and identity network.

* :mod:`lsi.world.embedded` - the shipped embedded weights (``lsi/weights/*.pt``) and their loaders;
* :mod:`lsi.world.spec` - which world a run uses (:class:`~lsi.world.spec.WorldSpec`, ``model.init_args.world``);
* :mod:`lsi.world.frozen` - one frozen world per process and spec (:func:`~lsi.world.frozen.frozen_world`);
* :mod:`lsi.world.perceptual` - perceptual distances that never download anything (LPIPS with a local backbone,
  the DINO ViT-B/8 loss of the LSI training);
* :mod:`lsi.world.paper_files` - the files of the paper's real path and one check of all of them at once.
"""
