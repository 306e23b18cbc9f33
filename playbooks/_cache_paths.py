"""CloudFront invalidation paths: read, checked, tidied and cut into requests (pure; no AWS).

The rules, from the CloudFront Developer Guide ("What you need to know when invalidating
paths", "Concurrent invalidation request maximum", "Paying for file invalidation"):

- A path starts with `/`; the `*` wildcard may only be its last character.
- Paths are case sensitive and sent as given: non-ASCII and unsafe characters must be
  URL-encoded by whoever writes the path. Fireline encodes nothing; it refuses instead.
- At most 3,000 file paths and, independently, 15 wildcard paths may be in progress per
  distribution at one time; past that CloudFront answers TooManyInvalidationsInProgress.
  So one request carries at most 3,000 file paths and 15 wildcard paths.
- AWS charges per path submitted, not per object removed: the first 1,000 paths a month
  in the account are free, then $0.005 a path; a wildcard path counts as one path.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

FILE_PATHS_PER_REQUEST = 3000
WILDCARD_PATHS_PER_REQUEST = 15
# More than 3,000 paths cannot even be in progress at once; an incident that needs more
# wants a wildcard. 45 wildcards are three requests, each sent when the one before is done.
MAX_PATHS = 3000
MAX_WILDCARD_PATHS = 3 * WILDCARD_PATHS_PER_REQUEST
MAX_PATH_LENGTH = 4000
# The plan and the outcome are kept on the incident, a DynamoDB item of at most 400 KB,
# and the paths appear there about six times (params, plan, outcome): past this many
# characters in all, the record could not be saved.
MAX_TOTAL_CHARACTERS = 40_000
FREE_PATHS_A_MONTH = 1000
PRICE_PER_PATH = 0.005
EVERYTHING = "/*"

_SHOWN = 5  # how many offending paths a message names


@dataclass(frozen=True)
class PathPlan:
    """The paths to send, the requests they go in, and what the reader should know."""

    paths: tuple[str, ...]
    requests: tuple[tuple[str, ...], ...]
    warnings: tuple[str, ...]


def split_paths(value: object) -> object:
    """The CLI passes `paths=/a,/b`: a string is a comma-separated list. A list stays."""
    if isinstance(value, str):
        return value.split(",")
    return value


def read_paths(raw: Sequence[str]) -> PathPlan:
    """Check, tidy and batch `raw`; ValueError names every path refused and why."""
    if not raw:
        raise ValueError(f"no paths given; leave paths out to invalidate everything "
                         f"({EVERYTHING})")
    problems: list[str] = []
    slashed: list[str] = []
    wanted: list[str] = []
    for given in raw:
        path = given.strip()
        problem = _problem(path)
        if problem:
            problems.append(f"{given!r} {problem}")
            continue
        if not path.startswith("/"):
            slashed.append(path)
            path = "/" + path
        wanted.append(path)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise ValueError(f"{len(problems)} path{_s(problems)} refused: "
                         + "; ".join(problems[:_SHOWN]) + more)

    unique = list(dict.fromkeys(wanted))
    paths, covered = _drop_covered(unique)
    wildcards = [p for p in paths if p.endswith("*")]
    files = [p for p in paths if not p.endswith("*")]
    if len(paths) > MAX_PATHS:
        raise ValueError(
            f"{len(paths):,} paths is more than {MAX_PATHS:,}, the most CloudFront can have in "
            "progress for a distribution; invalidate a directory with a wildcard such as "
            f"{_busiest_directory(files)[0]} instead")
    characters = sum(len(p) for p in paths)
    if characters > MAX_TOTAL_CHARACTERS:
        raise ValueError(
            f"the paths add up to {characters:,} characters, more than the "
            f"{MAX_TOTAL_CHARACTERS:,} an incident record can carry; invalidate a directory "
            f"with a wildcard such as {_busiest_directory(files)[0]} instead")
    if len(wildcards) > MAX_WILDCARD_PATHS:
        raise ValueError(
            f"{len(wildcards)} wildcard paths is more than {MAX_WILDCARD_PATHS} (CloudFront "
            f"takes {WILDCARD_PATHS_PER_REQUEST} in progress at a time); use fewer, broader "
            "wildcards")

    warnings: list[str] = []
    if slashed:
        warnings.append(f"paths start with /: read {_list(slashed)} as "
                        f"{_list(['/' + p for p in slashed])}")
    if len(unique) < len(wanted):
        warnings.append(f"{len(wanted) - len(unique)} repeated path{_s(wanted, len(unique))} "
                        "sent once")
    warnings += covered
    warnings += _load_warnings(wildcards)
    warnings += _cost_warnings(files)
    return PathPlan(paths=tuple(paths), requests=_requests(wildcards, files),
                    warnings=tuple(warnings))


def is_wildcard(path: str) -> bool:
    return path.endswith("*")


def describe(paths: Sequence[str]) -> str:
    """A short way to name the paths in a summary."""
    if len(paths) <= 3:
        return ", ".join(paths)
    return f"{len(paths)} paths ({', '.join(paths[:2])}, ...)"


def _problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if "://" in path:
        return "is a URL; give the path only, such as /index.html"
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in path):
        return "has whitespace or a control character"
    if not path.isascii():
        return ("has non-ASCII characters; URL-encode them yourself (CloudFront matches the "
                "encoded form, and Fireline changes no path silently)")
    if "*" in path[:-1]:
        return "has a * before its end; CloudFront takes the wildcard only as the last character"
    if len(path) > MAX_PATH_LENGTH:
        return f"is longer than {MAX_PATH_LENGTH:,} characters"
    return None


def _drop_covered(paths: list[str]) -> tuple[list[str], list[str]]:
    """Paths a wildcard already covers are redundant: /* covers everything."""
    if EVERYTHING in paths and len(paths) > 1:
        others = [p for p in paths if p != EVERYTHING]
        return [EVERYTHING], [f"{EVERYTHING} already invalidates everything, so the other "
                              f"{len(others)} path{_s(others)} ({_list(others)}) are left out"]
    wildcards = [p for p in paths if is_wildcard(p)]
    kept: list[str] = []
    warnings: list[str] = []
    for path in paths:
        cover = next((w for w in wildcards if w != path and path.startswith(w[:-1])), None)
        if cover is None:
            kept.append(path)
        else:
            warnings.append(f"{cover} already covers {path}, so {path} is left out")
    return kept, warnings


def _load_warnings(wildcards: list[str]) -> list[str]:
    # In money a wildcard never costs more than listing paths: it counts as one path. What
    # it costs is origin load: everything cached under it is fetched from the origin again.
    # That matters when the origin is what is struggling. A wildcard that ends a directory
    # (/*, /images/*) empties a whole tree; one like /app.js* only catches a file's
    # query-string variants, so only the former are worth a warning.
    if EVERYTHING in wildcards:
        return [f"{EVERYTHING} empties the distribution's whole cache: every object is "
                "fetched from the origin again on its next request, so the origin takes the "
                "full load until the cache refills; if the origin is struggling, list the "
                "stale paths instead"]
    trees = [w for w in wildcards if w.endswith("/*")]
    if not trees:
        return []
    return [f"{_list(trees)} empt{'y' if len(trees) > 1 else 'ies'} everything cached under "
            f"{_list([w[:-1] for w in trees])}: the origin serves all of it again on the next "
            "requests; list the stale paths instead if the origin is struggling"]


def _cost_warnings(files: list[str]) -> list[str]:
    if len(files) <= FREE_PATHS_A_MONTH:
        return []
    beyond = len(files) - FREE_PATHS_A_MONTH
    wildcard, under = _busiest_directory(files)
    return [f"{len(files):,} file paths: AWS charges ${PRICE_PER_PATH} a path past the first "
            f"{FREE_PATHS_A_MONTH:,} of the month in the account, so this costs at least "
            f"${beyond * PRICE_PER_PATH:,.2f} and up to ${len(files) * PRICE_PER_PATH:,.2f} "
            f"if this month's free paths are used up; a wildcard counts as one path: "
            f"{wildcard} would cover {under:,} of these (but empties everything under it)"]


def _busiest_directory(files: list[str]) -> tuple[str, int]:
    directories = Counter(p.rsplit("/", 1)[0] + "/*" for p in files)
    if not directories:
        return EVERYTHING, 0
    return directories.most_common(1)[0]


def _requests(wildcards: list[str], files: list[str]) -> tuple[tuple[str, ...], ...]:
    wild = _chunks(wildcards, WILDCARD_PATHS_PER_REQUEST)
    plain = _chunks(files, FILE_PATHS_PER_REQUEST)
    count = max(len(wild), len(plain))
    return tuple(
        tuple((wild[n] if n < len(wild) else []) + (plain[n] if n < len(plain) else []))
        for n in range(count))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _list(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _s(items: Sequence[object], less: int = 0) -> str:
    return "" if len(items) - less == 1 else "s"
