"""What the trainer and the reporter agree on, written once: the tensor store's file names, the
tensor names, atomic writes, S3 access and how options are declared.

Standard library only (boto3 is imported lazily by ``latentlapse.s3``), and Python 3.8 syntax:
the trainer runs in SageMaker's MXNet 1.9 image (Python 3.8), the reporter's image has no MXNet,
and the compose entrypoint runs beside both.
"""
