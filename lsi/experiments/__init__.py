"""Experiments: runnable studies built on the CLI and the models, each ``python -m lsi.experiments.<name>``.

* :mod:`lsi.experiments.table1` (+ :mod:`~lsi.experiments.table1_report`) - ``make table``: Table 1 and figures;
* :mod:`lsi.experiments.mask_bench` - ``make bench-masks``: learned vs random vs Hadamard masks;
* :mod:`lsi.experiments.faces_bench` - ``make bench-faces``: speed of the procedural face renderer;
* :mod:`lsi.experiments.probe` - a converged linear attribute probe on L vs E(I);
* :mod:`lsi.experiments.hardware_e2e` - ``make hardware-e2e``: capture, test, fine-tune on the simulated rig;
* :mod:`lsi.experiments.pretrain` - ``make pretrain-embedded`` / ``make eval-embedded``: the embedded world.
"""
