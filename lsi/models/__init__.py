"""The models room: what is trained (LightningModules, their networks and callbacks).

* :mod:`lsi.models.digital_encoder` - D_theta, readings -> W+ offset;
* :mod:`lsi.models.imaging` - :class:`~lsi.models.imaging.LatentImagingModule`: O and D_theta trained together;
* :mod:`lsi.models.projectors`, :mod:`lsi.models.heads` - the downstream projectors P_A, P_S, P_L and their
  LightningModules;
* :mod:`lsi.models.checkpoints` - loading checkpoints written before classes moved;
* :mod:`lsi.models.callbacks` - run artefacts, ``metrics.json`` and the reconstruction evaluation of ``lsi test``.
"""
