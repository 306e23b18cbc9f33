"""Which boto3 operations the deployed code calls, read from its source.

The IAM check in tests/infra compares this against the template, so a new call without a
grant (or a grant nobody calls) fails a test instead of an incident at 3 a.m.

How a call is recognised: a module names its services as string literals to the client
factory (`clients("lambda")`, `aws.client("sts")`); an attribute call whose name is an
operation of one of those services (`lam.update_alias(...)`), or a paginator asked for by
operation name (`get_paginator("list_object_versions")`), is a call of that service. A
helper module that is handed its client names no service, so its operations are matched
against every service the deployed code uses, and must be unambiguous.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
FACTORY_NAMES = {"client", "clients", "_clients"}
# Modules that run on a developer's machine, never in the deployed functions.
NOT_DEPLOYED = ("fireline.local", "fireline.demo", "fireline.cli")


@dataclass(frozen=True, order=True)
class Call:
    service: str  # botocore's client name: "lambda", "stepfunctions", ...
    operation: str  # botocore's operation name: "UpdateAlias"
    module: str


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def deployed_modules() -> dict[str, Path]:
    found = {}
    for package in ("fireline", "handlers", "playbooks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            if not name.startswith(NOT_DEPLOYED):
                found[name] = path
    return found


@cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> operation name, from botocore's own model."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def services_named(tree: ast.Module) -> set[str]:
    named = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in FACTORY_NAMES:
                named.add(node.args[0].value)
    return named


def _called_names(tree: ast.Module) -> Iterable[str]:
    """Attribute names, called or not: `calls = {"cache": ag.flush_stage_cache}` counts."""
    not_boto = {id(node.func) for node in ast.walk(tree) if _is_pydantic_secret_read(node)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"get_paginator", "get_waiter"} and node.args
                and isinstance(node.args[0], ast.Constant)):
            yield _WAITER_OPERATIONS.get(str(node.args[0].value), str(node.args[0].value))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _PROVIDERS):
            yield _PROVIDERS[node.func.id]
        elif isinstance(node, ast.Attribute) and id(node) not in not_boto and not (
                isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}):
            # `self.update_method` is the object's own, never a client's.
            yield node.attr


def _is_pydantic_secret_read(node: ast.AST) -> bool:
    """`token.get_secret_value()` reads a pydantic SecretStr; boto3's always names SecretId."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_secret_value" and not node.args and not node.keywords)


# Powertools utilities that make the call themselves on the client they are handed.
_PROVIDERS = {"SecretsProvider": "get_secret_value"}


# A waiter polls one operation; the ones the code uses.
_WAITER_OPERATIONS = {"table_exists": "describe_table"}


class AmbiguousCall(AssertionError):
    pass


def calls_by_module() -> dict[str, set[Call]]:
    modules = deployed_modules()
    trees = {name: _tree(path) for name, path in modules.items()}
    everywhere = set().union(*(services_named(t) for t in trees.values()))
    result: dict[str, set[Call]] = {}
    for name, tree in trees.items():
        own = services_named(tree)
        calls = set()
        for method in set(_called_names(tree)):
            candidates = [s for s in (own or everywhere) if method in _operations(s)]
            if not candidates and own:
                # A helper in a module that also makes clients of its own.
                candidates = [s for s in everywhere if method in _operations(s)]
            if len(candidates) > 1:
                raise AmbiguousCall(
                    f"{name}: .{method}() is an operation of {sorted(candidates)}; "
                    "create that client in this module so the service is named")
            if candidates:
                service = candidates[0]
                calls.add(Call(service, _operations(service)[method], name))
        result[name] = calls
    return result


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Deployed modules that `name` imports, at any depth of its code (lazy imports too)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(_tree(path)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            # `import fireline.engine` also runs fireline/__init__.
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    found.add(candidate)
    return found


def reachable_from(entry: str) -> set[str]:
    """Modules a handler can run: its imports, transitively, and every playbook, because
    the registry imports playbooks by a name computed at run time (or all of them, for
    listings), which no import statement shows."""
    modules = deployed_modules()
    known = set(modules)
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(name, modules[name], known) - seen)
        if name == "fireline.registry":
            todo.extend(m for m in known if m.startswith("playbooks."))
    return seen


def calls_from(entry: str) -> set[Call]:
    by_module = calls_by_module()
    return set().union(*(by_module[m] for m in reachable_from(entry)))
