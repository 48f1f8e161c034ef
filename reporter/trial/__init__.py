"""Reading: a smdebug trial (a local folder, ``s3://`` or a SageMaker job) in, checked probe steps out.

A probe step is one EVAL pass: the probe set's latent vectors, labels, input and reconstructed
images and losses as arrays, with its training step, after the trainer's digests were checked.
The modules: ``store`` (the trial while it grows), ``s3`` and ``sagemaker_job`` (where it lives),
``roles`` (which tensor is which), ``images`` and ``labels`` (their forms), ``modes`` (which steps
make frames), ``integrity`` (the digests), ``steps`` (training steps as people count them).
"""
