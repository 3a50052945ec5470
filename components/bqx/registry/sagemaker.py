"""The registry in SageMaker's Model Registry: a model package group per pair (``{aws.prefix}-{pair}``),
a model package per version.

Each version's package carries the serving image with its model.tar.gz (stored under
``s3://{bucket}/{prefix}/registry/{pair}/{sha12}/`` with its metrics and model card), the approval status
the gate gave it and its reason (the description), the sha256 and the headline metrics as customer
metadata, the metrics file as model quality statistics, and a model card (overview, test-split RMSE of
the model and both baselines, a link to the full Markdown card). The sha256 finds a model registered
before, so a rerun adds no version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bqx.artifacts import METRICS, MODEL_CARD, MODEL_TARBALL
from bqx.aws import client, require, split_s3, tags
from bqx.config import Settings
from bqx.endpoint import ModelRef, exists
from bqx.model_package import sha256_of
from bqx.registry.gate import APPROVED, BASELINES, Decision
from bqx.registry.version import Version

HEADLINE = tuple(f"{name}_rmse" for name in ("model", *BASELINES))
NOT_FOUND = ("ValidationException", "ResourceNotFound")


def group_name(settings: Settings, pair: str) -> str:
    """``{prefix}-{pair}`` in the characters a group name allows (63 at most)."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", f"{settings.aws.prefix}-{pair}").strip("-")
    return name[:63].rstrip("-")


def model_card_content(pair: str, metrics: dict[str, float], decision: Decision, card_uri: str) -> str:
    """The package's model card, in SageMaker's model card JSON schema."""
    data = [{"name": name, "type": "number", "value": float(metrics[f"{name}_rmse"])}
            for name in ("model", *BASELINES) if f"{name}_rmse" in metrics]
    return json.dumps({
        "model_overview": {"model_description": f"bqx-ml CatBoost forecast of future BQX for {pair}; "
                                                f"gate: {decision.reason}"[:1024]},
        "evaluation_details": [{"name": "test split", "metric_groups": [{"name": "RMSE", "metric_data": data}]}],
        "additional_information": {"custom_details": {"model_card_markdown": card_uri}},
    })


class SageMakerRegistry:
    def __init__(self, settings: Settings) -> None:
        require(settings, "bucket", "serve_image")
        self.settings = settings
        self.sm: Any = client("sagemaker", settings)
        self.s3: Any = client("s3", settings)

    def _ensure_group(self, pair: str) -> str:
        name = group_name(self.settings, pair)
        if not exists(lambda: self.sm.describe_model_package_group(ModelPackageGroupName=name)):
            self.sm.create_model_package_group(
                ModelPackageGroupName=name, ModelPackageGroupDescription=f"bqx-ml models of {pair}",
                Tags=tags(self.settings, pair=pair))
        return name

    def _version(self, desc: dict) -> Version:
        props = desc.get("CustomerMetadataProperties") or {}
        return Version(
            pair=props.get("pair", ""), version=int(desc["ModelPackageVersion"]), sha256=props.get("sha256", ""),
            status=desc.get("ModelApprovalStatus", ""),
            reason=desc.get("ApprovalDescription") or desc.get("ModelPackageDescription", ""),
            location=desc["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
            metrics={k: float(props[k]) for k in HEADLINE if k in props},
            created=str(desc.get("CreationTime", "")))

    def _packages(self, pair: str, **filters: str) -> list[dict]:
        name = group_name(self.settings, pair)
        if not exists(lambda: self.sm.describe_model_package_group(ModelPackageGroupName=name)):
            return []
        pages = self.sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=name, **filters)
        return [s for page in pages for s in page["ModelPackageSummaryList"]]

    def versions(self, pair: str) -> list[Version]:
        found = [self._version(self.sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]))
                 for s in self._packages(pair)]
        return sorted(found, key=lambda v: v.version)

    def register(self, ref: ModelRef, decision: Decision) -> tuple[Version, bool]:
        a = self.settings.aws
        digest = sha256_of(ref.tarball)
        for v in self.versions(ref.pair):
            if v.sha256 == digest:
                return v, False
        group = self._ensure_group(ref.pair)
        prefix = f"{a.prefix}/registry/{ref.pair}/{digest[:12]}"
        self.s3.upload_file(str(ref.tarball), a.bucket, f"{prefix}/{MODEL_TARBALL}")
        self.s3.put_object(Bucket=a.bucket, Key=f"{prefix}/{METRICS}", Body=json.dumps(ref.metrics, sort_keys=True))
        self.s3.put_object(Bucket=a.bucket, Key=f"{prefix}/{MODEL_CARD}", Body=ref.card.encode())
        base = f"s3://{a.bucket}/{prefix}"
        props = {"pair": ref.pair, "sha256": digest,
                 **{k: f"{ref.metrics[k]:.6g}" for k in HEADLINE if k in ref.metrics},
                 **{k: str(ref.meta[k]) for k in ("catalog_version", "settings_hash") if ref.meta.get(k)}}
        arn = self.sm.create_model_package(
            ModelPackageGroupName=group, ModelPackageDescription=decision.reason[:1024],
            ModelApprovalStatus=decision.status, CustomerMetadataProperties=props,
            InferenceSpecification={"Containers": [{"Image": a.serve_image, "ModelDataUrl": f"{base}/{MODEL_TARBALL}"}],
                                    "SupportedContentTypes": ["application/json"],
                                    "SupportedResponseMIMETypes": ["application/json"]},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                          "S3Uri": f"{base}/{METRICS}"}}},
            ModelCard={"ModelCardContent": model_card_content(ref.pair, ref.metrics, decision, f"{base}/{MODEL_CARD}"),
                       "ModelCardStatus": "Draft"},
            Tags=tags(self.settings, pair=ref.pair))["ModelPackageArn"]
        return self._version(self.sm.describe_model_package(ModelPackageName=arn)), True

    def approved(self, pair: str) -> Version | None:
        ok = self._packages(pair, ModelApprovalStatus=APPROVED)
        if not ok:
            return None
        newest = max(ok, key=lambda s: int(s["ModelPackageVersion"]))
        return self._version(self.sm.describe_model_package(ModelPackageName=newest["ModelPackageArn"]))

    def fetch(self, version: Version, dest: Path) -> Path:
        bucket, key = split_s3(version.location)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(bucket, key, str(dest))
        return dest

    def set_status(self, pair: str, version: int, status: str, reason: str) -> Version:
        match = [s for s in self._packages(pair) if int(s["ModelPackageVersion"]) == version]
        if not match:
            raise ValueError(f"model package group {group_name(self.settings, pair)} has no version {version}")
        arn = match[0]["ModelPackageArn"]
        self.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=reason)
        return self._version(self.sm.describe_model_package(ModelPackageName=arn))
