#!/usr/bin/env python3
"""Keeps the Lambda functions on one crypto stack and free of development code.

For every function (the packages under functions/), from `cargo tree` (the normal edges, host
target, as `make build` resolves them for one function):
- josekit is there (the RS256 step of the signature check);
- none of the refused crates is there: ring and rustls 0.21 (the SDK's legacy HTTPS client),
  native-tls (a second TLS library), hyper 0.14;
- no crypto crate appears in two versions (`cargo tree -d`);
- shared is built without its `dev` feature (the development signer, certificate server,
  devstack and test helpers).
And for the operator tools (the `tools` package): none of the refused crates and no `http` 0.2
(an SDK crate held back by the workspace's `rust-version` brings it back with older smithy
crates).
Run by `make deps`; usage: check_deps.py (from the repository root).
"""
import pathlib
import re
import subprocess
import sys

REFUSED = {
    "ring": None,
    "native-tls": None,
    "rustls": "0.21",
    "hyper": "0.14",
    "hyper-rustls": "0.24",
}
REQUIRED = ["josekit", "openssl", "rustls", "aws-lc-rs"]
CRYPTO = {
    "ring", "aws-lc-rs", "aws-lc-sys", "openssl", "openssl-sys", "rustls", "rustls-webpki",
    "tokio-rustls", "hyper-rustls", "native-tls", "sha1", "sha2", "hmac", "md-5", "p256",
    "josekit", "subtle",
}
LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+) v(?P<version>\S+)")


def tree(*args):
    out = subprocess.run(
        ["cargo", "tree", "-e", "normal", "--prefix", "none", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return [m for m in (LINE.match(line) for line in out.splitlines()) if m]


def main():
    functions = sorted(p.parent.name for p in pathlib.Path("functions").glob("*/Cargo.toml"))
    problems = []
    for f in functions:
        crates = {(m["name"], m["version"]) for m in tree("-p", f)}
        names = {n for n, _ in crates}
        for name in REQUIRED:
            if name not in names:
                problems.append(f"{f}: {name} is not in the tree")
        for name, version in crates:
            if name in REFUSED and (REFUSED[name] is None or version.startswith(REFUSED[name])):
                problems.append(f"{f}: {name} v{version} is in the tree")
        dups = {m["name"] for m in tree("-p", f, "-d", "--depth", "0")}
        for name in sorted(dups & CRYPTO):
            problems.append(f"{f}: {name} is in the tree in more than one version")
        features = subprocess.run(
            ["cargo", "tree", "-p", f, "-e", "features", "-i", "shared", "--prefix", "none"],
            check=True, capture_output=True, text=True,
        ).stdout
        if 'shared feature "dev"' in features:
            problems.append(f"{f}: shared is built with its dev feature")
        print(f"{f}: {len(crates)} crates, one crypto stack")
    tools = {(m["name"], m["version"]) for m in tree("-p", "tools")}
    for name, version in sorted(tools):
        refused = name in REFUSED and (REFUSED[name] is None or version.startswith(REFUSED[name]))
        if refused or (name == "http" and version.startswith("0.")):
            problems.append(f"tools: {name} v{version} is in the tree")
    print(f"tools: {len(tools)} crates, no http 0.2")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
