"""Everything Kubeflow-specific: the components (one per stage), the pipelines, compiling them, running
them on this machine through kfp.local, scheduling them on a cluster, the kustomize manifests and the
stage image names. The stages' work itself lives in the library modules these call."""
