"""Deployment: the inference graph (:mod:`lsi.deploy.graph`) and ``lsi export`` (:mod:`lsi.deploy.export`)."""
