"""Object versions under a prefix, and which one was current when (a private module).

`list_versions` and `head_latest` read S3; `decide` is pure: from the listed versions and a
time it says, key by key, what a rollback does. The playbook is `s3_static_rollback.py`.

S3 lists a key's versions newest first and its delete markers newest first, in two lists
(botocore parses them apart), with `LastModified` in whole seconds. The two lists are
merged by time; when a version and a delete marker of one key share a second, which came
first cannot be told, and a rollback that depends on it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from fireline.timestamps import as_utc

NAME = "s3-static-rollback"
# Versions per ListObjectVersions page (S3's maximum); tests make it small.
PAGE_SIZE = 1000
# Storage classes a copy cannot read without a restore from the archive first.
ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
MARKER = "delete-marker:"

Kind = Literal["restore", "undelete", "hide"]


@dataclass(frozen=True)
class Version:
    """One version or delete marker of one key, as ListObjectVersions reports it."""

    key: str
    version_id: str
    last_modified: datetime
    is_latest: bool
    is_marker: bool
    etag: str = ""
    storage_class: str = "STANDARD"


@dataclass(frozen=True)
class History:
    """A key's versions and delete markers, newest first."""

    key: str
    entries: tuple[Version, ...]
    # Seconds in which a version and a delete marker of this key cannot be ordered.
    ties: frozenset[datetime] = frozenset()

    @property
    def latest(self) -> Version:
        return self.entries[0]

    def at(self, moment: datetime) -> Version | None:
        """The version or delete marker current at `moment`; None when there was none.

        Raises `Ambiguous` when the answer depends on an order S3 does not report."""
        for entry in self.entries:
            if entry.last_modified <= moment:
                if entry.last_modified in self.ties and not entry.is_latest:
                    raise Ambiguous(self.key, entry.last_modified)
                return entry
        return None

    def find(self, version_id: str) -> Version | None:
        return next((e for e in self.entries if e.version_id == version_id), None)


class Ambiguous(Exception):
    def __init__(self, key: str, second: datetime) -> None:
        super().__init__(key)
        self.key, self.second = key, second


@dataclass(frozen=True)
class Action:
    """What the rollback does to one key (JSON-safe through `to_state`/`from_state`).

    restore   copy `target` over the data version `current`
    undelete  copy `target` over the delete marker `current` (deleted since)
    hide      put a delete marker over `current` (created since; only with delete_new)
    """

    key: str
    kind: Kind
    current: str
    target: str | None = None
    etag: str = ""
    storage_class: str = "STANDARD"

    def to_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "current": self.current}
        if self.target is not None:
            out |= {"target": self.target, "etag": self.etag}
        if self.storage_class != "STANDARD":
            out["storage_class"] = self.storage_class
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Action:
        return cls(**data)

    @property
    def before(self) -> str:
        """The key's latest version as recorded: a delete marker's id is prefixed."""
        return f"{MARKER}{self.current}" if self.kind == "undelete" else self.current


@dataclass
class Decision:
    actions: list[Action] = field(default_factory=list)
    # Present now, absent (or deleted) at the time, and left alone (delete_new is false).
    added: list[str] = field(default_factory=list)
    unchanged: int = 0
    existed: int = 0  # keys with data at the time
    ambiguous: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)


def decide(histories: Iterable[History], moment: datetime, *, delete_new: bool) -> Decision:
    """Key by key: bring back the version current at `moment` where the latest differs."""
    out = Decision()
    for history in sorted(histories, key=lambda h: h.key):
        now = history.latest
        try:
            then = history.at(moment)
        except Ambiguous as exc:
            out.ambiguous.append(f"{exc.key} ({exc.second:%H:%M:%S})")
            continue
        present_then = then is not None and not then.is_marker
        if present_then:
            out.existed += 1
        if then is not None and then.version_id == now.version_id:
            out.unchanged += 1
        elif present_then:
            assert then is not None
            if then.storage_class in ARCHIVED:
                out.archived.append(f"{history.key} ({then.storage_class})")
                continue
            out.actions.append(Action(
                key=history.key, kind="undelete" if now.is_marker else "restore",
                current=now.version_id, target=then.version_id, etag=then.etag,
                storage_class=then.storage_class))
        elif now.is_marker:
            out.unchanged += 1  # absent then, deleted now
        elif delete_new:
            out.actions.append(Action(key=history.key, kind="hide", current=now.version_id))
        else:
            out.added.append(history.key)
    return out


def list_versions(s3: Any, bucket: str, prefix: str) -> dict[str, History]:
    """Every version and delete marker under `prefix`, per key, newest first (paginated).

    Raises botocore's ClientError; the caller names the call."""
    versions: dict[str, list[Version]] = {}
    markers: dict[str, list[Version]] = {}
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE})
    for page in pages:
        for item in page.get("Versions", []):
            versions.setdefault(item["Key"], []).append(_version(item, marker=False))
        for item in page.get("DeleteMarkers", []):
            markers.setdefault(item["Key"], []).append(_version(item, marker=True))
    return {key: _history(key, versions.get(key, []), markers.get(key, []))
            for key in sorted(versions.keys() | markers.keys())}


@dataclass(frozen=True)
class Latest:
    version_id: str
    is_marker: bool
    etag: str = ""


def head_latest(s3: Any, bucket: str, key: str) -> Latest | None:
    """The key's latest version (or delete marker) now; None when the key has none.

    Raises botocore's ClientError for anything but a missing key."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if headers.get("x-amz-delete-marker") == "true" and headers.get("x-amz-version-id"):
            return Latest(version_id=headers["x-amz-version-id"], is_marker=True)
        if status == 404 or exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
            return None
        raise
    return Latest(version_id=head.get("VersionId", "null"), is_marker=False,
                  etag=head.get("ETag", ""))


def _version(item: dict[str, Any], *, marker: bool) -> Version:
    return Version(key=item["Key"], version_id=item["VersionId"],
                   last_modified=as_utc(item["LastModified"]),
                   is_latest=bool(item.get("IsLatest")), is_marker=marker,
                   etag=item.get("ETag", ""), storage_class=item.get("StorageClass", "STANDARD"))


def _history(key: str, versions: list[Version], markers: list[Version]) -> History:
    # Each list is newest first already; merge by time, the latest before all.
    ordered = sorted(
        [(v, i) for i, v in enumerate(versions)] + [(m, i) for i, m in enumerate(markers)],
        key=lambda pair: (not pair[0].is_latest, -pair[0].last_modified.timestamp(), pair[1]))
    entries = tuple(v for v, _ in ordered)
    # The latest is known to be newest; the others of one second must be of one kind.
    kinds: dict[datetime, set[bool]] = {}
    for entry in entries:
        if not entry.is_latest:
            kinds.setdefault(entry.last_modified, set()).add(entry.is_marker)
    ties = frozenset(second for second, seen in kinds.items() if len(seen) > 1)
    return History(key=key, entries=entries, ties=ties)
