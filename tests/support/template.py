"""The SAM template as CloudFormation will see it: packaged as `sam package` does, then
through SAM's own translator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
REGION = "eu-west-1"


def source() -> dict[str, Any]:
    # cfn-lint's loader reads the short forms (!Ref, !Sub …) into their long forms.
    return json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` hands CloudFormation: code in S3, the state machine inline."""
    template = copy.deepcopy(template)
    template["Globals"]["Function"]["CodeUri"] = "s3://fireline-artifacts/fireline.zip"
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            path = TEMPLATE.parent / properties.pop("DefinitionUri")
            properties["Definition"] = json.loads(path.read_text())
    return template


def translated(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    parameters = dict(parameters or {})
    expanded = packaged(source())
    values = {**parameters, "AWS::Region": REGION, "AWS::AccountId": "123456789012",
              "AWS::Partition": "aws", "AWS::StackName": "fireline"}
    # CommaDelimitedList parameters reach the translator as strings, as CloudFormation
    # passes them.
    values = {k: ",".join(v) if isinstance(v, list) else v for k, v in values.items()}
    # The region comes from the session handed in, not from the machine's configuration;
    # the template names managed policies by ARN, so none is looked up (that would call IAM).
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(
        region_name=REGION))
    return translator.translate(expanded, parameter_values=values,
                                get_managed_policy_map=dict)


def lint_problems(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=[REGION]))
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]
