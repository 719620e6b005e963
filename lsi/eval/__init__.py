"""The evaluation room: numbers about reconstructions and predictions, computed from tensors.

* :mod:`lsi.eval.metrics` - the paper's metrics as torchmetrics classes, and :func:`~lsi.eval.metrics.psnr`;
* :mod:`lsi.eval.reconstruction` - reconstruction quality of a world's G on given latents (Table 1);
* :mod:`lsi.eval.floors` - the constant predictor: what a head scores without any measurement;
* :mod:`lsi.eval.face_recognition` - dlib / VGG-Face / FaRL / Inception tools for real photographs.

Nothing here imports the models room: evaluation takes tensors, a world and a threshold.
"""
