"""A static site in a versioned S3 bucket, as a deploy pipeline leaves it, release by release.

Used by the demo and the tests against moto: create the bucket, upload release 1, take
`pause_between_releases()` (a time after release 1 and before anything uploaded next),
upload release 2 (some files changed, some new), delete what release 2 dropped, then
roll back to that time. Each helper returns what a caller checks afterwards.

S3 (and moto) keep `LastModified` in whole seconds, so "a time between two releases" needs
the clock to pass a second boundary between them; `pause_between_releases` waits for that
(at most a second) and says which moment lies between.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from fireline.aws import ClientFactory
from fireline.timestamps import as_utc, utc_now


def create_versioned_bucket(clients: ClientFactory, name: str, *,
                            versioning: Literal["Enabled", "Suspended"] | None = "Enabled",
                            region: str | None = None) -> dict[str, Any]:
    """A bucket as AWS makes one today (ACLs disabled: BucketOwnerEnforced), with
    versioning `Enabled` (or `Suspended`, or never turned on with None)."""
    s3 = clients("s3", region=region) if region else clients("s3")
    request: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**request)
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    if versioning == "Suspended":
        # Suspended only exists after Enabled: that is how a bucket gets there.
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    return {"name": name, "arn": f"arn:aws:s3:::{name}", "versioning": versioning}


def upload_release(clients: ClientFactory, bucket: str, files: Mapping[str, str | bytes], *,
                   prefix: str = "", content_type: str | None = None,
                   metadata: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Upload `files` (name -> content) under `prefix`; only these keys get a new version.

    The content type is `content_type`, else guessed from the name (index.html is
    text/html). Returns, per key, its new `VersionId` ("null" where versioning is off),
    `LastModified` (aware UTC), `ETag` and `ContentType`.
    """
    s3 = clients("s3")
    uploaded: dict[str, dict[str, Any]] = {}
    for name, body in files.items():
        key = f"{prefix}{name}"
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        put = s3.put_object(Bucket=bucket, Key=key, ContentType=kind,
                            Body=body.encode() if isinstance(body, str) else body,
                            Metadata=dict(metadata or {}))
        # An unversioned bucket answers without a VersionId: its one version is "null".
        version = put.get("VersionId", "null")
        head = s3.head_object(Bucket=bucket, Key=key, **(
            {"VersionId": version} if "VersionId" in put else {}))
        uploaded[key] = {"VersionId": version,
                         "LastModified": as_utc(head["LastModified"]),
                         "ETag": put["ETag"], "ContentType": head["ContentType"]}
    return uploaded


def delete_files(clients: ClientFactory, bucket: str, names: Iterable[str], *,
                 prefix: str = "") -> dict[str, str]:
    """Delete `names` under `prefix` the way a sync with --delete does (a delete marker on
    top; every version stays). Returns each key's delete marker VersionId."""
    s3 = clients("s3")
    return {f"{prefix}{name}": s3.delete_object(Bucket=bucket, Key=f"{prefix}{name}")["VersionId"]
            for name in names}


def pause_between_releases(*, clock: Callable[[], datetime] = utc_now,
                           sleep: Callable[[float], None] = time.sleep) -> datetime:
    """Return a moment that lies between what was uploaded before this call and whatever
    is uploaded after it, as S3's whole-second `LastModified` sees them.

    Waits until the clock passes the next whole second (at most a second): a version
    uploaded before has a `LastModified` at or before the moment returned, one uploaded
    after has a later one. The moment cut to whole seconds lies between them too.
    """
    between = clock()
    next_second = between.replace(microsecond=0) + timedelta(seconds=1)
    # A little past the boundary, so a clock that rounds cannot land on it.
    sleep((next_second - between).total_seconds() + 0.02)
    return between


def read_site(clients: ClientFactory, bucket: str, *, prefix: str = "") -> dict[str, bytes]:
    """What the site serves now: every key under `prefix` whose latest version is not a
    delete marker, with its content."""
    s3 = clients("s3")
    site: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            site[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return site


def all_versions(clients: ClientFactory, bucket: str, *,
                 prefix: str = "") -> dict[str, set[tuple[str, str]]]:
    """Every version under `prefix`, per kind: {"versions": {(key, id)}, "markers": {...}}
    - what a check that nothing was ever deleted compares before and after."""
    s3 = clients("s3")
    out: dict[str, set[tuple[str, str]]] = {"versions": set(), "markers": set()}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                  Prefix=prefix):
        out["versions"] |= {(v["Key"], v["VersionId"]) for v in page.get("Versions", [])}
        out["markers"] |= {(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])}
    return out
