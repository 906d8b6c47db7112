#!/usr/bin/env python3
"""Prints, as one JSON object, the two templates tests/tests/deploy_paths.rs compares:

- "template": template.yaml as CloudFormation deploys it (Fn::ForEach expanded, then the SAM
  transform: tools/expand_template.py), so each function's role is the AWS::IAM::Role SAM
  generates, with the statements SAM adds for its events;
- "base": deploy/cargo-lambda-base.yaml (plain CloudFormation), read by cfn-lint's reader
  (short-form tags such as !Ref as their long form).

Offline; run with the project venv's python (make venv).
Usage: templates_json.py [template.yaml] [deploy/cargo-lambda-base.yaml]
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from expand_template import load, translated  # noqa: E402


def main():
    template = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "template.yaml")
    base = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "deploy/cargo-lambda-base.yaml")
    out = {
        "template": translated(load(template)),
        "base": json.loads(json.dumps(load(base))),
    }
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
