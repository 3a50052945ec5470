"""The model registry and its gate: every trained model becomes a version of its pair, the gate decides
whether it may serve, and deploy serves each pair's newest approved version.

``gate`` (the decision), ``version`` (a version's record and the registry interface), ``local`` (a
directory), ``sagemaker`` (SageMaker Model Registry: a model package group per pair), ``promote``
(which version serves each pair, and why).
"""
