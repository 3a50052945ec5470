"""The deploy stage: a local model repository, and S3 + a SageMaker multi-model endpoint (boto3 or ACK).

Local backend: a model repository laid out like a multi-model endpoint's prefix.

``{repo}/{pair}.tar.gz`` for every pair (the TargetModel names a multi-model endpoint would use) and
``manifest.json`` (pair -> file, sha256, bytes, catalog version, settings hash, metrics). Deploying the
same models again changes nothing; files are replaced atomically.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bqx.artifacts import MANIFEST
from bqx.config import Settings
from bqx.endpoint import (  # noqa: F401 (DeployFailed, wait_endpoint and endpoint_action: the stage's own words)
    MANIFEST_META,
    DeployFailed,
    EndpointDeploy,
    ModelRef,
    create_missing,
    deployment_config,
    deregister_scaling,
    endpoint_action,
    endpoint_config_request,
    endpoint_request,
    ensure_scaling,
    exists,
    found,
    model_request,
    publish_models,
    read_manifest,
    variant_of,
    wait_endpoint,
    write_manifest,
)
from bqx.io import atomic_path, read_json, write_json
from bqx.model_package import sha256_of
from bqx.registry.promote import Served, open_registry, promote


@dataclass(frozen=True)
class Repository:
    """The local model repository after a deploy: its manifest's entries and the pairs whose file changed."""

    models: dict[str, dict]  # pair -> manifest.json entry (target_model, sha256, bytes, catalog_version, ...)
    changed: list[str]


@dataclass(frozen=True)
class DeploySummary:
    repository: Repository
    endpoint: EndpointDeploy | None  # None on the local backend
    failed: dict[str, str]  # pair -> why it has no model to deploy
    served: list[Served] = field(default_factory=list)  # per trained pair: its registered version, what serves

    @property
    def not_served(self) -> dict[str, str]:
        """Pairs that trained but have no approved version, and why."""
        return {s.pair: s.why for s in self.served if s.serving is None}


def deploy_local(models: list[ModelRef], repo: str | Path) -> Repository:
    """Copy each pair's model.tar.gz into the repository and write the manifest."""
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    manifest_path = repo / MANIFEST
    old = read_json(manifest_path) if manifest_path.exists() else {"models": {}}
    entries: dict[str, dict] = dict(old.get("models", {}))
    changed = []
    for ref in sorted(models, key=lambda r: r.pair):
        digest = sha256_of(ref.tarball)
        name = f"{ref.pair}.tar.gz"
        target = repo / name
        if not (target.exists() and entries.get(ref.pair, {}).get("sha256") == digest):
            with atomic_path(target) as tmp:
                shutil.copyfile(ref.tarball, tmp)
            changed.append(ref.pair)
        entries[ref.pair] = {"target_model": name, "sha256": digest, "bytes": target.stat().st_size,
                             **{k: ref.meta.get(k) for k in MANIFEST_META}}
    manifest = {"models": dict(sorted(entries.items())), "changed": changed}
    if old.get("models") != manifest["models"] or changed or not manifest_path.exists():
        write_json(manifest, manifest_path)
    return Repository(manifest["models"], changed)


# ---- SageMaker multi-model endpoint ------------------------------------------------------------------


def deploy_sagemaker(models: list[ModelRef], settings: Settings, sleep: Callable[[float], None] = time.sleep
                     ) -> EndpointDeploy:
    """Publish the models under one S3 prefix and serve them from one multi-model endpoint.

    Target models are versioned (``{pair}-{sha12}.tar.gz``) because a multi-model endpoint caches what
    it loaded: a changed model gets a new name, and ``manifest.json`` under the prefix maps pairs to
    names. The Model, EndpointConfig and scaling are created only when missing or changed; an existing
    endpoint moves to a new config with UpdateEndpoint (SageMaker's blue/green). Running it twice with
    the same models changes nothing. With ``aws.ab_candidate_percent`` and an endpoint already serving
    other models, the new models go live as an A/B test's candidate instead (:mod:`bqx.ab.endpoint`)."""
    from bqx.aws import client, require

    require(settings, "bucket", "role_arn", "serve_image")
    a = settings.aws
    s3, sm, aas = client("s3", settings), client("sagemaker", settings), client("application-autoscaling", settings)
    before = read_manifest(s3, settings)
    manifest, uploaded = publish_models(s3, models, settings, write=False)
    endpoint = found(lambda: sm.describe_endpoint(EndpointName=a.endpoint_name))
    if before is not None and before.get("ab") and not a.ab_candidate_percent:
        raise DeployFailed(f"an A/B test ({before['ab']['id']}) is running on endpoint {a.endpoint_name}: end it "
                           "with `bqx ab decide --apply`, `bqx ab promote` or `bqx ab rollback` first, or deploy "
                           "with aws.ab_candidate_percent set to test these models against the current ones")
    if a.ab_candidate_percent and endpoint is not None and before is not None:
        from bqx.ab.endpoint import start_ab

        started = start_ab(sm, s3, aas, settings, before, manifest, sleep)
        if started is not None:
            return EndpointDeploy(started.manifest, started.model, started.endpoint_config,
                                  uploaded + started.uploaded, started.created, started.updated, held=started.held)
    done: dict[str, list[str]] = {"uploaded": uploaded, "created": [], "updated": []}
    model_name = create_missing(sm, "model", model_request(settings), done["created"])
    config_name = create_missing(sm, "endpoint-config", endpoint_config_request(settings, model_name), done["created"])
    action = endpoint_action(endpoint["EndpointConfigName"] if endpoint else None, config_name)
    released = False
    if action == "create":
        sm.create_endpoint(**endpoint_request(settings, config_name))
        done["created"].append(f"endpoint/{a.endpoint_name}")
    elif action == "update":
        assert endpoint is not None
        # AWS refuses UpdateEndpoint while a scalable target pins the variant and the instance type or
        # count changes: let go of the target now, register it again once the endpoint is in service
        if variant_of(sm, endpoint["EndpointConfigName"]) != (a.endpoint_instance_type, a.endpoint_instance_count):
            released = deregister_scaling(aas, settings)
            if released:
                done["updated"].append("scaling/deregistered")
        sm.update_endpoint(EndpointName=a.endpoint_name, EndpointConfigName=config_name,
                           DeploymentConfig=deployment_config(settings))
        done["updated"].append(f"endpoint/{a.endpoint_name}")
    wait_endpoint(sm, a.endpoint_name, config_name, a.poll_s, a.endpoint_timeout_s, sleep)
    # the manifest names what clients invoke: written once the endpoint serves it
    write_manifest(s3, manifest, settings)
    scaling = ensure_scaling(aas, settings, fresh=released)
    if scaling:
        done["created" if scaling == "target+policy" else "updated"].append(f"scaling/{scaling}")
    return EndpointDeploy(manifest, model_name, config_name, **done)


BACKENDS = ("local", "sagemaker", "ack")


def run(models: list[ModelRef], backend: str, settings: Settings, repo: str | Path,
        failed: dict[str, str] | None = None, run_label: str = "") -> DeploySummary:
    """The deploy stage: register every model and let the gate choose what serves each pair
    (``bqx.registry``), then the local repository always (every backend keeps it) and the endpoint
    through boto3 (``sagemaker``) or the ACK controller's resources (``ack``, labelled ``run_label``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown deploy backend {backend!r} ({', '.join(BACKENDS)})")
    with tempfile.TemporaryDirectory(prefix="bqx-deploy-") as work:
        served = promote(models, open_registry(backend, settings, repo), settings, Path(work))
        refs = [s.ref for s in served if s.ref is not None]
        repository = deploy_local(refs, repo)
        endpoint = None
        if backend == "sagemaker":
            endpoint = deploy_sagemaker(refs, settings)
        elif backend == "ack":
            from bqx.ack.deploy import deploy_ack

            endpoint = deploy_ack(refs, settings, run_label)
    return DeploySummary(repository, endpoint, dict(failed or {}), served)
