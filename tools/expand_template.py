#!/usr/bin/env python3
"""Expands template.yaml the way CloudFormation and SAM do, offline.

Two steps, as the service runs them:
1. `AWS::LanguageExtensions` (Fn::ForEach, ...), with SAM CLI's expander
   (samcli.lib.cfn_language_extensions, AWS's port of the service's own implementation, the one
   `sam build/validate --language-extensions` runs), so what the test and checkov see is what
   `sam` and CloudFormation make of the loops, not a second implementation of them.
2. `AWS::Serverless-2016-10-31`, with the SAM translator (what `sam validate` runs), only for
   `translated()`.

Usage: expand_template.py [template.yaml] [out.yaml]: writes step 1 (the SAM template without
Fn::ForEach) for tools that do not expand it themselves (checkov 3.x keeps Fn::ForEach keys as
resources of an unknown type, so it would scan nothing of what they hold).
"""
import copy
import os
import sys

import yaml

# The translator names ARNs by region; no call is made (policies are inline statements).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samcli.lib.cfn_language_extensions.sam_integration import (  # noqa: E402
    expand_language_extensions,
)
from samcli.yamlhelper import yaml_parse  # noqa: E402

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def load(path):
    """The template as CloudFormation reads it (short-form tags as their long form)."""
    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def expanded(template):
    """Step 1: Fn::ForEach (and the other language extensions) expanded; the transform is
    dropped from `Transform` since nothing of it is left."""
    result = expand_language_extensions(template, parameter_values={}, enabled=True)
    out = copy.deepcopy(result.expanded_template)
    transform = out.get("Transform")
    if isinstance(transform, list):
        rest = [t for t in transform if t != LANGUAGE_EXTENSIONS]
        out["Transform"] = rest[0] if len(rest) == 1 else rest
    elif transform == LANGUAGE_EXTENSIONS:
        del out["Transform"]
    leftover = [k for k in out.get("Resources", {}) if k.startswith("Fn::ForEach::")]
    if leftover:
        raise ValueError(f"Fn::ForEach not expanded: {leftover}")
    return out


class _NoManagedPolicies:
    """The translator's managed policy loader, offline: the template names none by name."""

    def load(self):
        return {}


def translated(template):
    """Steps 1 and 2: the plain CloudFormation template that would be deployed."""
    from samtranslator.translator.transform import transform

    sam = expanded(template)
    # As `sam validate` does: a local CodeUri is not an S3 location the translator accepts.
    for resource in sam.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"
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
