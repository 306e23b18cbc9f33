"""A Lambda context object for running handlers outside Lambda (CLI replay, demo, tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    function_name: str = "fireline"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # moto's account, which local runs act in (only a handler in Lambda reads it).
    account_id: str = "123456789012"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{self.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000
