"""Resource marks kept in memory, for playbook tests that run without the incident store."""

from __future__ import annotations


class Marks:
    """Resource marks kept in memory: the playbook's only memory, here observable."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], set[str]] = {}

    def marks(self, resource: str, kind: str) -> set[str]:
        return set(self.kept.get((resource, kind), set()))

    def add_mark(self, resource: str, kind: str, value: str, *, incident_id: str) -> None:
        self.kept.setdefault((resource, kind), set()).add(value)

    def remove_mark(self, resource: str, kind: str, value: str) -> None:
        self.kept.get((resource, kind), set()).discard(value)
