"""What the template checks share: reporting their problems and running as a script.

`report` prints each problem to stderr (exit status 1), or the one-line summary of a clean
check (0); `run` calls a check's `main` with the command line and exits with its status, a
`ValueError` (an expansion or a catalog that cannot be read) reported as a failure.
"""

import sys


def report(problems, summary):
    """Prints the problems to stderr, or `summary` when there are none; the exit status."""
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(summary)
    return 0


def run(main):
    """Exits with `main(arguments)`; a ValueError exits 1, its message on stderr."""
    try:
        sys.exit(main(sys.argv[1:]))
    except ValueError as e:  # an expansion or a catalog that cannot be read
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        sys.exit(1)
