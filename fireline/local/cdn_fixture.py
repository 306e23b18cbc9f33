"""Caches in front of a service, as a team's stack leaves them: a CloudFront distribution
with alternate domain names, and an API Gateway REST API whose stage has a cache cluster.

Used by the demo and the tests against moto. Each helper returns what a caller checks
afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fireline.aws import ClientFactory

# AWS's managed "CachingOptimized" cache policy.
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def create_distribution(clients: ClientFactory, *, aliases: Sequence[str] = (),
                        origin_domain: str = "origin.example.com", enabled: bool = True,
                        comment: str = "") -> dict[str, Any]:
    """A distribution with one custom origin; returns its Id, DomainName, ARN and Aliases."""
    config = {
        "CallerReference": f"fireline-fixture-{uuid.uuid4().hex}",
        "Comment": comment,
        "Enabled": enabled,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "origin", "DomainName": origin_domain,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "origin",
                                 "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": CACHING_OPTIMIZED},
    }
    distribution = clients("cloudfront").create_distribution(
        DistributionConfig=config)["Distribution"]
    return {"Id": distribution["Id"], "DomainName": distribution["DomainName"],
            "ARN": distribution["ARN"], "Aliases": list(aliases)}


def create_cached_stage(clients: ClientFactory, *, api_name: str, stage: str = "prod",
                        cache: bool = True, cache_size: str = "0.5",
                        ttl_seconds: int = 300) -> dict[str, Any]:
    """A REST API with a GET / (mock integration) deployed to `stage`; with `cache`, the
    stage has a cache cluster and caching on for every method. Returns id, name, stage."""
    apigateway = clients("apigateway")
    api = apigateway.create_rest_api(name=api_name)
    root = next(r["id"] for r in apigateway.get_resources(restApiId=api["id"])["items"]
                if r["path"] == "/")
    apigateway.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET",
                          authorizationType="NONE")
    apigateway.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET",
                               type="MOCK")
    deployment = apigateway.create_deployment(restApiId=api["id"])
    request: dict[str, Any] = {"restApiId": api["id"], "stageName": stage,
                               "deploymentId": deployment["id"], "cacheClusterEnabled": cache}
    if cache:
        request["cacheClusterSize"] = cache_size
    apigateway.create_stage(**request)
    if cache:
        apigateway.update_stage(restApiId=api["id"], stageName=stage, patchOperations=[
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
            {"op": "replace", "path": "/*/*/caching/ttlInSeconds", "value": str(ttl_seconds)}])
    return {"id": api["id"], "name": api_name, "stage": stage}
