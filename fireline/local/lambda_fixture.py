"""A function with published versions and an alias, as a deploy pipeline leaves it.

Used by the demo, the tests and the benchmarks against moto.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from fireline.aws import ClientFactory

_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def _role(clients: ClientFactory) -> str:
    iam = clients("iam")
    try:
        return iam.get_role(RoleName="fireline-demo-function")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="fireline-demo-function",
                               AssumeRolePolicyDocument=json.dumps(_ROLE_POLICY))["Role"]["Arn"]


def deploy_versions(clients: ClientFactory, name: str, *, versions: int = 3,
                    alias: str = "live", alias_version: str | None = None,
                    weights: dict[str, float] | None = None,
                    environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Create `name` with versions 1..N (each a code change) and `alias` on the last one."""
    lam = clients("lambda")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=_role(clients), Handler="app.handler",
        Code={"ZipFile": _zip("def handler(event, context):\n    return 'v1'\n")},
        Environment={"Variables": dict(environment or {})},
        Publish=True)
    for number in range(2, versions + 1):
        lam.update_function_code(
            FunctionName=name,
            ZipFile=_zip(f"def handler(event, context):\n    return 'v{number}'\n"))
        lam.publish_version(FunctionName=name, Description=f"release {number}")
    request: dict[str, Any] = {"FunctionName": name, "Name": alias,
                               "FunctionVersion": alias_version or str(versions)}
    if weights:
        request["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    return lam.create_alias(**request)
