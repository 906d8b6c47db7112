#!/usr/bin/env python3
"""Fails when a checkov skip in a CloudFormation/SAM template has no written reason.

Every resource's `Metadata: checkov: skip:` must be a list of `{id, comment}` where `id` is a
check id (CKV_AWS_12, CKV2_AWS_3, ...) and `comment` is one sentence (non-empty, ending with a
full stop). A misspelt key (`skips`, `reason`) would make checkov ignore the skip silently, so
any other key is an error too. Run by `make checkov-skips`; usage: check_checkov_skips.py [template]
"""
import re
import sys

import yaml


class _Loader(yaml.SafeLoader):
    """Accepts CloudFormation's short-form tags (!Ref, !If, !Sub, ...) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _any_tag)

CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_[0-9]+$")
# A second sentence: a full stop, a space and a capital letter.
TWO_SENTENCES = re.compile(r"\.\s+[A-Z]")


def problems(template):
    found = []
    for name, resource in (template.get("Resources") or {}).items():
        meta = (resource or {}).get("Metadata") or {}
        if "checkov" not in meta:
            continue
        ckv = meta["checkov"]
        if not isinstance(ckv, dict) or set(ckv) != {"skip"}:
            found.append(f"{name}: Metadata.checkov must hold only `skip`")
            continue
        skips = ckv["skip"]
        if not isinstance(skips, list) or not skips:
            found.append(f"{name}: Metadata.checkov.skip must be a non-empty list")
            continue
        seen = set()
        for i, skip in enumerate(skips):
            where = f"{name}: skip[{i}]"
            if not isinstance(skip, dict):
                found.append(f"{where}: must be {{id, comment}}")
                continue
            extra = set(skip) - {"id", "comment"}
            if extra:
                found.append(f"{where}: unknown key(s) {sorted(extra)}")
            check = skip.get("id")
            if not isinstance(check, str) or not CHECK_ID.match(check):
                found.append(f"{where}: id {check!r} is not a checkov check id")
            elif check in seen:
                found.append(f"{where}: {check} skipped twice")
            else:
                seen.add(check)
            comment = skip.get("comment")
            if not isinstance(comment, str) or not comment.strip():
                found.append(f"{where} ({check}): no reason (comment)")
            elif not comment.strip().endswith("."):
                found.append(f"{where} ({check}): the reason must be a sentence ending with '.'")
            elif TWO_SENTENCES.search(comment.strip()):
                found.append(f"{where} ({check}): the reason must be one sentence")
    return found


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=_Loader)
    found = problems(template)
    count = sum(
        len(((r or {}).get("Metadata") or {}).get("checkov", {}).get("skip", []) or [])
        for r in (template.get("Resources") or {}).values()
        if isinstance(((r or {}).get("Metadata") or {}).get("checkov"), dict)
    )
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    if found:
        return 1
    print(f"{path}: {count} checkov skips, each with a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
