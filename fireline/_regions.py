"""Region codes for the display names CloudWatch writes into SNS alarm messages.

The SNS `Region` field is a console display name whose wording changed over the years
("Asia Pacific - Tokyo" before 2018, "US East (N. Virginia)" since, "Europe (...)" in newer
consoles). It is only a fallback when no ARN in the payload carries the region code.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# code -> (area, place) as in "Area (Place)"; alternates below cover renamed wording.
_REGIONS: dict[str, tuple[str, str]] = {
    "us-east-1": ("US East", "N. Virginia"),
    "us-east-2": ("US East", "Ohio"),
    "us-west-1": ("US West", "N. California"),
    "us-west-2": ("US West", "Oregon"),
    "af-south-1": ("Africa", "Cape Town"),
    "ap-east-1": ("Asia Pacific", "Hong Kong"),
    "ap-east-2": ("Asia Pacific", "Taipei"),
    "ap-south-1": ("Asia Pacific", "Mumbai"),
    "ap-south-2": ("Asia Pacific", "Hyderabad"),
    "ap-southeast-1": ("Asia Pacific", "Singapore"),
    "ap-southeast-2": ("Asia Pacific", "Sydney"),
    "ap-southeast-3": ("Asia Pacific", "Jakarta"),
    "ap-southeast-4": ("Asia Pacific", "Melbourne"),
    "ap-southeast-5": ("Asia Pacific", "Malaysia"),
    "ap-southeast-6": ("Asia Pacific", "New Zealand"),
    "ap-southeast-7": ("Asia Pacific", "Thailand"),
    "ap-northeast-1": ("Asia Pacific", "Tokyo"),
    "ap-northeast-2": ("Asia Pacific", "Seoul"),
    "ap-northeast-3": ("Asia Pacific", "Osaka"),
    "ca-central-1": ("Canada", "Central"),
    "ca-west-1": ("Canada West", "Calgary"),
    "eu-central-1": ("Europe", "Frankfurt"),
    "eu-central-2": ("Europe", "Zurich"),
    "eu-west-1": ("Europe", "Ireland"),
    "eu-west-2": ("Europe", "London"),
    "eu-west-3": ("Europe", "Paris"),
    "eu-south-1": ("Europe", "Milan"),
    "eu-south-2": ("Europe", "Spain"),
    "eu-north-1": ("Europe", "Stockholm"),
    "il-central-1": ("Israel", "Tel Aviv"),
    "me-south-1": ("Middle East", "Bahrain"),
    "me-central-1": ("Middle East", "UAE"),
    "mx-central-1": ("Mexico", "Central"),
    "sa-east-1": ("South America", "Sao Paulo"),
    "us-gov-west-1": ("AWS GovCloud", "US-West"),
    "us-gov-east-1": ("AWS GovCloud", "US-East"),
    "cn-north-1": ("China", "Beijing"),
    "cn-northwest-1": ("China", "Ningxia"),
}

# Wording that "Area (Place)" does not produce ("Area - Place" does: see `_key`).
_ALTERNATES: dict[str, str] = {
    "US - N. Virginia": "us-east-1",
    "US Standard": "us-east-1",
    "US - Ohio": "us-east-2",
    "US - N. California": "us-west-1",
    "US - Oregon": "us-west-2",
    "Asia Pacific (Osaka-Local)": "ap-northeast-3",
    "Canada - Central": "ca-central-1",
    "South America (São Paulo)": "sa-east-1",
    "AWS GovCloud (US)": "us-gov-west-1",
    "Middle East (United Arab Emirates)": "me-central-1",
}


def _key(name: str) -> str:
    # Punctuation, spacing and accents vary between console generations; letters do not,
    # so "Asia Pacific - Tokyo" and "Asia Pacific (Tokyo)" share a key.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_name.lower())


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, (area, place) in _REGIONS.items():
        for name in [area, "EU"] if area == "Europe" else [area]:
            table[_key(f"{name} ({place})")] = code
    table.update({_key(name): code for name, code in _ALTERNATES.items()})
    return table


_BY_DISPLAY_NAME = _table()


def region_from_display_name(name: Any) -> str | None:
    """The region code for a display name like "EU (Ireland)", or None when unknown."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        return None
    return _BY_DISPLAY_NAME.get(_key(name))
