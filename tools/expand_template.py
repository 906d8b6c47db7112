#!/usr/bin/env python3
"""Expands template.yaml the way CloudFormation does, offline.

Two steps, as the service runs them:
1. `AWS::LanguageExtensions` (Fn::ForEach): with cfn-lint's expander, the one `make cfn-lint`
   validates the template through. It only unrolls the loops (the loop variable in keys, in
   `!Sub` strings and `Ref`s, and the `Fn::FindInMap`s it selects) and leaves every other
   intrinsic as written (`!If`, `!Ref` of a parameter), as the service does before it knows the
   parameters. SAM CLI's expander (samcli.lib.cfn_language_extensions, what
   `sam build --language-extensions` runs) is run too, and the two must produce the same
   logical ids; it is not used for the output because it also resolves parameters to their
   defaults and `!If` to the default branch (e.g. it drops every `HasKmsKey` statement), so a
   scan of its output would see another stack than the one deployed with a key.
   The loop variable must appear only in keys and inside `!Sub` (cfn-lint does not replace it
   in a plain string, the service does): a `${Name}` left in the expansion is an error.
2. `AWS::Serverless-2016-10-31`, with the SAM translator (what `sam validate` runs), only for
   `translated()`.

Usage: expand_template.py [template.yaml] [out.yaml]: writes step 1 (the SAM template without
Fn::ForEach) for tools that do not expand it themselves: checkov 3.x reads `Fn::ForEach::X` as
a resource of no known type, so it would scan nothing of what a loop holds.
"""
import json
import logging
import os
import re
import sys

import yaml

# The translator names ARNs by region; no call is made (policies are inline statements).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# The SAM translator warns of its own unpublished usage metrics on every run.
logging.getLogger("samtranslator").setLevel(logging.ERROR)

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOR_EACH = re.compile(r"^Fn::ForEach::\w+$")


def load(path):
    """The template, for `expanded` (cfn-lint's reader: short-form tags as their long form)."""
    from cfnlint.decode import decode

    template, matches = decode(path)
    if matches:
        raise ValueError(f"{path}: {matches}")
    return template


def _loop_identifiers(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and FOR_EACH.match(k) and isinstance(v, list) and v:
                found.add(str(v[0]))
            _loop_identifiers(v, found)
    elif isinstance(node, list):
        for v in node:
            _loop_identifiers(v, found)
    return found


def _strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def _sam_cli_ids(template):
    from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions

    result = expand_language_extensions(
        json.loads(json.dumps(template)), parameter_values={}, enabled=True
    )
    return set(result.expanded_template.get("Resources", {}))


def expanded(template):
    """Step 1: Fn::ForEach expanded (plain dicts, lists and strings); `AWS::LanguageExtensions`
    is dropped from `Transform` since nothing of it is left."""
    from cfnlint.template import Template
    from cfnlint.template.transforms._language_extensions import language_extension

    identifiers = _loop_identifiers(template, set())
    matches, result = language_extension(Template("template.yaml", template, ["us-east-1"]))
    if matches or result is None:
        raise ValueError(f"Fn::ForEach expansion failed: {[m.message for m in matches]}")
    out = json.loads(json.dumps(result))
    transform = out.get("Transform")
    if isinstance(transform, list):
        rest = [t for t in transform if t != LANGUAGE_EXTENSIONS]
        out["Transform"] = rest[0] if len(rest) == 1 else rest
    elif transform == LANGUAGE_EXTENSIONS:
        del out["Transform"]
    leftover = [k for k in out.get("Resources", {}) if k.startswith("Fn::ForEach::")]
    if leftover:
        raise ValueError(f"Fn::ForEach not expanded: {leftover}")
    for s in _strings(out):
        for name in identifiers:
            if f"${{{name}}}" in s or f"&{{{name}}}" in s:
                raise ValueError(
                    f"loop variable {name} left in {s!r}: write it inside !Sub, or in a key"
                )
    sam_cli = _sam_cli_ids(template)
    if sam_cli != set(out.get("Resources", {})):
        raise ValueError(
            "cfn-lint's and SAM CLI's expansions differ: "
            f"{sorted(sam_cli ^ set(out.get('Resources', {})))}"
        )
    return out


class _NoManagedPolicies:
    """The translator's managed policy loader, offline: the template names none by name."""

    def load(self):
        return {}


def translated(template):
    """Steps 1 and 2: the plain CloudFormation template that would be deployed."""
    from samtranslator.translator.transform import transform

    sam = expanded(template)
    # As `sam validate` does: a local path is not an S3 location the translator accepts.
    local = {
        "AWS::Serverless::Function": "CodeUri",
        "AWS::Serverless::LayerVersion": "ContentUri",
        "AWS::Serverless::Api": "DefinitionUri",
        "AWS::Serverless::HttpApi": "DefinitionUri",
        "AWS::Serverless::StateMachine": "DefinitionUri",
    }
    for resource in sam.get("Resources", {}).values():
        kind = resource.get("Type")
        properties = resource.setdefault("Properties", {})
        if kind == "AWS::Serverless::Function" and properties.get("PackageType") != "Image":
            properties["CodeUri"] = "s3://bucket/key"
        elif kind in local and isinstance(properties.get(local[kind]), str):
            properties[local[kind]] = "s3://bucket/key"
    if "CodeUri" in (sam.get("Globals", {}).get("Function") or {}):
        sam["Globals"]["Function"]["CodeUri"] = "s3://bucket/key"
    return transform(sam, {}, _NoManagedPolicies())


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    dst = sys.argv[2] if len(sys.argv) > 2 else None
    text = yaml.safe_dump(expanded(load(src)), sort_keys=False, width=100)
    if dst:
        with open(dst, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
