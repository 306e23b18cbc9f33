"""The local CloudTrail in front of moto's server: the writes it served, looked up."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from fireline import aws
from fireline.local.aws_server import local_aws
from fireline.local.lambda_fixture import deploy_versions


def _user_clients(user: str):
    iam = aws.client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                    aws_secret_access_key=key["SecretAccessKey"])
    return lambda service, region=None: session.client(service, region_name=region)


def test_the_writes_served_are_looked_up_newest_first_with_who_did_them(aws_env):
    with local_aws(cloudtrail=True):
        deploy_versions(_user_clients("ci-deploy"), "checkout", versions=2)
        aws.client("lambda").get_alias(FunctionName="checkout", Name="live")  # a read
        cloudtrail = aws.client("cloudtrail")

        events = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": "checkout"}])["Events"]
        paged = cloudtrail.lookup_events(MaxResults=2, LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": "checkout"}])
        nothing = cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": "other"}])["Events"]

    assert [e["EventName"] for e in events] == [
        "CreateAlias", "PublishVersion", "UpdateFunctionCode", "CreateFunction"]
    assert {e["Username"] for e in events} == {"ci-deploy"}
    assert {e["ReadOnly"] for e in events} == {"false"}
    assert events[0]["Resources"] == [{"ResourceType": "AWS::Lambda::Function",
                                       "ResourceName": "checkout"}]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["requestParameters"]["functionVersion"] == "2"
    assert record["eventSource"] == "lambda.amazonaws.com"
    published = json.loads(events[1]["CloudTrailEvent"])
    assert published["responseElements"]["version"] == "2"
    assert len(paged["Events"]) == 2 and paged["NextToken"]
    assert nothing == []


def test_an_operation_moto_lacks_fails_at_once_instead_of_being_retried(aws_env):
    with local_aws(cloudtrail=True):
        started = time.monotonic()
        with pytest.raises(ClientError) as failed:
            aws.client("cloudwatch").get_metric_widget_image(MetricWidget="{}")
        took = time.monotonic() - started

    assert failed.value.response["Error"]["Code"] == "NotImplemented"
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert took < 2
