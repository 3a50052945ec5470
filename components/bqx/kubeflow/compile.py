"""Compile the pipeline to KFP IR YAML (checked in under pipelines/; a test proves it is fresh)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATH = Path("pipelines") / "bqx_pipeline.yaml"
DRIFT_PATH = Path("pipelines") / "bqx_drift_pipeline.yaml"
PREDICT_PATH = Path("pipelines") / "bqx_predict_pipeline.yaml"


def compile_pipeline(out: str | Path = DEFAULT_PATH, which: str = "train", registry: str | None = None,
                     tag: str | None = None) -> Path:
    """Compile the training pipeline (``train``), the recurring drift pipeline (``drift``) or batch
    prediction (``predict``).

    ``registry`` / ``tag`` point every stage at images pushed elsewhere (``{registry}/bqx-{stage}:{tag}``):
    the compiled spec's executor images are rewritten from the defaults, so nothing is hand-edited."""
    import tempfile

    import yaml
    from kfp import compiler

    from bqx.kubeflow.images import REGISTRY, STAGES, TAG, image
    from bqx.kubeflow.pipelines import PIPELINES

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    func = PIPELINES[which][1]
    if registry is None and tag is None:
        compiler.Compiler().compile(func, str(path))
        return path
    with tempfile.TemporaryDirectory() as tmp:
        compiler.Compiler().compile(func, str(Path(tmp) / "p.yaml"))
        doc, platform = load_compiled(Path(tmp) / "p.yaml")
    mapping = {image(s): image(s, registry or REGISTRY, tag or TAG) for s in STAGES}
    for executor in doc["deploymentSpec"]["executors"].values():
        container = executor["container"]
        if container["image"] not in mapping:
            raise ValueError(f"compiled image {container['image']} is not a bqx stage image")
        container["image"] = mapping[container["image"]]
    docs = [doc] if platform is None else [doc, platform]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=True))
    return path


def load_compiled(path: str | Path) -> tuple[dict, dict | None]:
    """A compiled pipeline file: the PipelineSpec and, when a task has Kubernetes settings (kfp-kubernetes:
    the tasks' security context), the platform spec KFP writes as a second YAML document."""
    import yaml

    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    if not docs or len(docs) > 2:
        raise ValueError(f"{path}: expected a PipelineSpec and at most a platform spec, found {len(docs)} documents")
    return docs[0], docs[1] if len(docs) == 2 else None
