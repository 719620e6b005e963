"""Inference from an exported model without Lightning: the model (:mod:`lsi.runtime.model`), ``lsi infer``
(:mod:`lsi.runtime.infer`) and ``lsi plan`` (:mod:`lsi.runtime.plan`)."""
