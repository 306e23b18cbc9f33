"""Cold start: a fresh process importing `handlers.alarm` and handling one SNS alarm event,
against a fresh process that only imports boto3 and creates the same boto3 clients.

AWS is moto's server on 127.0.0.1 (started once here, with a function per run to revert),
Slack the local Slack-compatible server; both run in this process, the measured ones are
children. Each run is timed from `subprocess` start to exit, so interpreter start-up counts
the same on both sides. Prints both medians and their ratio (goal, issue 8: <= 1.5), and
where Fireline's time goes: imports, then the event, of which waiting on the local AWS and
Slack (moto's HTTP answers and Slack's, which real AWS and Slack would take too).

Like a deployed function, the children read compiled modules (the build compiles them) and
end without tearing the interpreter down (Lambda freezes a process, it never exits it):
both sides stop the clock when their work is done.
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = 7
GOAL_RATIO = 1.5
TABLE = "cold-start"

# The measured process: what Lambda does on a cold start, then one event. The timings it
# prints are for the breakdown only; the comparison uses the parent's wall clock.
FIRELINE = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    from handlers.alarm import handler
    imported = time.perf_counter()

    waited = [0.0]
    def timed(owner, name):
        original = getattr(owner, name)
        def wrapper(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                waited[0] += time.perf_counter() - begun
        setattr(owner, name, wrapper)
    # Time spent waiting on the stand-ins: botocore's HTTP send, slack-sdk's HTTP exchange.
    import botocore.httpsession, slack_sdk.web.base_client
    timed(botocore.httpsession.URLLib3Session, "send")
    timed(slack_sdk.web.base_client.BaseClient, "_perform_urllib_http_request")
    hooked = time.perf_counter()

    class Context:
        function_name = "fireline-alarm"
        function_version = "$LATEST"
        memory_limit_in_mb = 512
        aws_request_id = "cold-start"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fireline-alarm"
        def get_remaining_time_in_millis(self):
            return 300_000

    result = handler(json.loads(sys.stdin.read()), Context())
    done = time.perf_counter()
    from fireline import aws
    print(json.dumps({"import": imported - started, "event": done - hooked,
                      "waited": waited[0], "result": result}), flush=True)
    import os
    os._exit(0)  # Lambda never tears the interpreter down: neither side pays for it here
""")

# The baseline: boto3 and the same clients, with Fireline's client configuration.
BASELINE = textwrap.dedent("""
    import json, sys
    import boto3
    from botocore.config import Config
    config = Config(retries={{"max_attempts": 5, "mode": "standard"}},
                    connect_timeout=5, read_timeout=20, user_agent="fireline")
    session = boto3.session.Session()
    clients = [session.client(service, region_name=region, config=config)
               for service, region in {clients!r}]
    print(len(clients), flush=True)
    import os
    os._exit(0)
""")

# Which clients a cold Fireline creates for that event (run once, not timed).
DISCOVER = textwrap.dedent("""
    import json, sys
    import boto3.session
    made = []
    original = boto3.session.Session.client
    def client(self, service_name, region_name=None, *args, **kwargs):
        made.append((service_name, region_name))
        return original(self, service_name, region_name, *args, **kwargs)
    boto3.session.Session.client = client
    from handlers.alarm import handler
    from fireline.local.lambda_context import LambdaContext
    handler(json.loads(sys.stdin.read()),
            LambdaContext(function_name="fireline-alarm", account_id="123456789012"))
    print(json.dumps(made))
""")


def _run(script: str, env: dict[str, str], stdin: str = "") -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], input=stdin, env=env, cwd=ROOT,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def main() -> int:
    from fireline import aws
    from fireline.incidents import IncidentStore
    from fireline.local.aws_server import local_aws
    from fireline.local.lambda_fixture import deploy_versions
    from fireline.local.payloads import sns_lambda_errors_event
    from fireline.local.slack_server import LocalSlack
    from fireline.timestamps import utc_now

    # The local CloudTrail stand-in answers what moto lacks at once (the context replies).
    with LocalSlack() as slack, local_aws(cloudtrail=True) as url:
        IncidentStore(TABLE, aws.client, utc_now).create_table()
        env = {**os.environ, "AWS_ENDPOINT_URL": url, "FIRELINE_TABLE": TABLE,
               "SLACK_BOT_TOKEN": "xoxb-cold-start", "FIRELINE_SLACK_CHANNEL": "#cold-start",
               "FIRELINE_SLACK_API_URL": slack.base_url, "POWERTOOLS_METRICS_DISABLED": "true",
               "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
               # As Lambda sets it: the handler then trusts the context's ARN.
               "AWS_LAMBDA_FUNCTION_NAME": "fireline-alarm"}
        env.pop("PYTHONPATH", None)

        def event(n: int) -> str:
            name = f"cold-{n}"
            deploy_versions(aws.client, name, versions=3)
            return json.dumps(sns_lambda_errors_event(function_name=name,
                                                      alarm_name=f"{name}-prod-errors"))

        # Compiled as `make build-<Function>` compiles the package (Lambda's /var/task is
        # read-only, and the children write no .pyc: PYTHONDONTWRITEBYTECODE).
        for package in ("fireline", "handlers", "playbooks"):
            compileall.compile_dir(ROOT / package, quiet=1)
        # Warm the OS's file cache and find the clients; neither run is counted.
        clients = [tuple(c) for c in json.loads(_run(DISCOVER, env, event(0))[1])]
        _run(BASELINE.format(clients=clients), env)
        fireline, baseline, breakdown = [], [], []
        for n in range(1, RUNS + 1):
            elapsed, out = _run(FIRELINE, env, event(n))
            report = json.loads(out)
            [incident] = report["result"]["incidents"]
            if incident["status"] != "mitigating":
                raise SystemExit(f"the cold run did not revert: {incident}")
            fireline.append(elapsed)
            breakdown.append(report)
            baseline.append(_run(BASELINE.format(clients=clients), env)[0])

    f_median, b_median = statistics.median(fireline), statistics.median(baseline)
    ratio = f_median / b_median
    imports = statistics.median(r["import"] for r in breakdown)
    event_time = statistics.median(r["event"] for r in breakdown)
    waited = statistics.median(r["waited"] for r in breakdown)
    print(f"cold start, fresh process, median of {RUNS} (moto server and local Slack on "
          "127.0.0.1):")
    print(f"  import handlers.alarm + one SNS alarm (revert, Slack thread)  "
          f"{f_median * 1000:7.0f} ms")
    print(f"  baseline: import boto3 + the same {len(clients)} clients "
          f"({', '.join(s for s, _ in clients)})  {b_median * 1000:7.0f} ms")
    print(f"  ratio {ratio:5.2f}   goal <= {GOAL_RATIO}: "
          f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}")
    print(f"  where Fireline's time goes: imports {imports * 1000:.0f} ms; the event "
          f"{event_time * 1000:.0f} ms, of which {waited * 1000:.0f} ms waiting on the local "
          "AWS and Slack")
    own = f_median - waited
    print(f"  without that wait (AWS and Slack instant): {own * 1000:.0f} ms, ratio "
          f"{own / b_median:4.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
