"""Training on the SageMaker training contract: one entrypoint, a local and a SageMaker launcher."""
