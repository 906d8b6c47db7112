"""moto server that serves one request at a time.

DynamoDB applies each conditional write and each TransactWriteItems atomically. moto's own
`moto_server` serves requests on threads and checks conditions without a lock, so two
concurrent conditional updates can both pass. Serving requests one after another gives the
emulator the same per-request atomicity as DynamoDB, which the ledger's concurrency tests
rely on. Usage: python moto_serial.py -H 127.0.0.1 -p PORT [--token T]

With --token, `GET /__moto-token` answers T: the harness (tools/src/moto.rs) checks that the
server on its port is the one it started, not another test's moto that took the port first.
"""

import argparse
import os
import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/__moto-token":
            body = args.token.encode()
            start_response(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return moto_app(environ, start_response)

    run_simple(
        args.host,
        args.port,
        app,
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
