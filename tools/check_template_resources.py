#!/usr/bin/env python3
"""Fails when the deployed resources of template.yaml differ from tests/template_resources.txt.

The template is expanded as CloudFormation would (AWS::LanguageExtensions, then the SAM
transform: tools/expand_template.py), and its logical ids and types must be exactly the ones
the list names, so that folding copies into Fn::ForEach or Globals cannot lose a resource (an
alarm, a log group, a permission, a role) unnoticed, nor add one.

Adding a resource: add its line (`LogicalId Type`, the CloudFormation type after the SAM
transform) to tests/template_resources.txt, or run `make template-resources-update` and review
the diff. The API deployment's id ends in a hash of the API, so it is listed as
`<Api>Deployment*`.

Also checks what `sam build` needs of every function after expansion: Metadata BuildMethod
rust-cargolambda and a BuildProperties Binary; that every parameter is in exactly one
AWS::CloudFormation::Interface parameter group; that no ARN hard-codes the `aws` partition; and
that no resource has a fixed physical name (BucketName, TableName, QueueName, ...: the property
`<Type>Name`, or `Name` of the types in NAMED_BY_NAME) without a stack-unique part
(${AWS::StackName} or AWS::StackId), so that a second stack can deploy in the same account and
region.

Usage: check_template_resources.py [--write] [template.yaml] [tests/template_resources.txt]
"""
import json
import re

from check_report import report, run
from expand_template import expanded, load, translated

# AWS::ApiGateway::Deployment ids end in 10 hex digits that change with the API's definition.
DEPLOYMENT = re.compile(r"^(?P<api>.+Deployment)[0-9a-f]{10}$")


# Physical-name properties: `<last segment of the type>Name` (BucketName of AWS::S3::Bucket,
# TableName, QueueName, TopicName, FunctionName, RoleName, StateMachineName, LogGroupName,
# AlarmName, DashboardName, ...), and these.
NAMED_BY_NAME = {
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::Kinesis::Stream": "Name",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
}
# Names inside a resource of this stack (an API's stages), unique with it.
SCOPED = {"AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"}
STACK_UNIQUE = ("AWS::StackName", "AWS::StackId")


def fixed_name_problems(deployed):
    """Resources of the deployed template whose physical name is the same in every stack."""
    problems = []
    for logical_id, resource in (deployed.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        if kind in SCOPED:
            continue
        properties = resource.get("Properties") or {}
        names = {kind.rsplit("::", 1)[-1] + "Name", NAMED_BY_NAME.get(kind)}
        for name in sorted(n for n in names if n and n in properties):
            if not any(u in json.dumps(properties[name]) for u in STACK_UNIQUE):
                problems.append(
                    f"{logical_id}: {name} is fixed (include ${{AWS::StackName}} or a part of"
                    " AWS::StackId, or leave it out for a generated name)"
                )
    return problems


def _self_test():
    """The fixed-name check finds what it must (it runs on every call: it cannot pass vacuously)."""
    sample = {
        "Resources": {
            "Fixed": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}},
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": {"Fn::Sub": "a-${AWS::Region}"}}},
            "Stack": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}}},
            "Id": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}}},
            "Generated": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    found = [p.split(":", 1)[0] for p in fixed_name_problems(sample)]
    if found != ["Fixed", "Api"]:
        raise ValueError(f"fixed-name self-test: found {found}, expected ['Fixed', 'Api']")


def resources(template, deployed=None):
    found = {}
    if deployed is None:
        deployed = translated(template)
    for logical_id, resource in deployed["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::ApiGateway::Deployment":
            m = DEPLOYMENT.match(logical_id)
            if m:
                logical_id = m.group("api") + "*"
        found[logical_id] = kind
    return found


def read_list(path):
    listed = {}
    problems = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                problems.append(f"{path}:{number}: expected `LogicalId Type`, got {line!r}")
                continue
            if parts[0] in listed:
                problems.append(f"{path}:{number}: {parts[0]} listed twice")
            listed[parts[0]] = parts[1]
    return listed, problems


def build_problems(template):
    problems = []
    for logical_id, resource in expanded(template)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        meta = resource.get("Metadata") or {}
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{logical_id}: Metadata.BuildMethod is not rust-cargolambda")
        if not (meta.get("BuildProperties") or {}).get("Binary"):
            problems.append(f"{logical_id}: Metadata.BuildProperties.Binary missing")
    return problems


def parameter_problems(template, text):
    problems = []
    groups = (
        (template.get("Metadata") or {}).get("AWS::CloudFormation::Interface") or {}
    ).get("ParameterGroups") or []
    grouped = [p for g in groups for p in g.get("Parameters") or []]
    for name in template.get("Parameters") or {}:
        count = grouped.count(name)
        if count != 1:
            problems.append(f"parameter {name} is in {count} parameter groups, not one")
    for name in set(grouped) - set(template.get("Parameters") or {}):
        problems.append(f"parameter group names {name}, which is no parameter")
    for number, line in enumerate(text.splitlines(), 1):
        if "arn:aws:" in line:
            problems.append(f"line {number}: an ARN with the partition written out (use ${{AWS::Partition}})")
    return problems


def main(argv):
    write = "--write" in argv
    args = [a for a in argv if a != "--write"]
    template_path = args[0] if args else "template.yaml"
    list_path = args[1] if len(args) > 1 else "tests/template_resources.txt"
    _self_test()
    template = load(template_path)
    deployed = translated(template)
    found = resources(template, deployed)
    if write:
        with open(list_path, "w", encoding="utf-8") as f:
            f.write(
                "# Resources of template.yaml after AWS::LanguageExtensions and the SAM transform\n"
                "# (`LogicalId Type`), checked by tools/check_template_resources.py (make test).\n"
                "# Add a line for every resource you add; remove one only on purpose.\n"
            )
            for logical_id in sorted(found):
                f.write(f"{logical_id} {found[logical_id]}\n")
        print(f"{list_path}: {len(found)} resources written")
        return 0
    listed, problems = read_list(list_path)
    for logical_id in sorted(set(listed) - set(found)):
        problems.append(
            f"resource {logical_id} ({listed[logical_id]}) missing from the expanded {template_path}"
        )
    for logical_id in sorted(set(found) - set(listed)):
        problems.append(
            f"resource {logical_id} ({found[logical_id]}) not in {list_path}"
            " (add the line if it is meant to be there)"
        )
    for logical_id in sorted(set(found) & set(listed)):
        if found[logical_id] != listed[logical_id]:
            problems.append(
                f"resource {logical_id} is {found[logical_id]}, {list_path} says {listed[logical_id]}"
            )
    problems += build_problems(template)
    problems += fixed_name_problems(deployed)
    with open(template_path, encoding="utf-8") as f:
        problems += parameter_problems(template, f.read())
    return report(
        problems,
        f"{template_path}: the {len(found)} resources of {list_path}, functions buildable,"
        " every parameter grouped, partition-correct ARNs, no fixed physical name",
    )


if __name__ == "__main__":
    run(main)
