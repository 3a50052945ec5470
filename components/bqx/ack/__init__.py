"""The ``ack`` backends: SageMaker training and endpoints driven through the ACK service controller for
SageMaker (group ``sagemaker.services.k8s.aws``) on a Kubernetes cluster.

``resources`` builds the custom resources (pure functions over the same requests the boto3 backends send),
``kube`` talks to the Kubernetes API and waits on their status, ``train`` and ``deploy`` are the two
stages' backends, ``manifests`` renders the objects as YAML files for review or GitOps.
"""
