"""The command line: ``fakeregistry serve`` starts a throwaway registry."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from werkzeug.serving import make_server

from .faults import parse_fault_spec
from .registry import FakeRegistry


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fakeregistry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an empty in-memory registry over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=5000, help="port; 0 picks a free one (default: %(default)s)")
    serve.add_argument(
        "--no-delete", dest="delete_enabled", action="store_false", help="answer DELETE with 405 UNSUPPORTED"
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable): ROUTE[:METHOD][:STATUS][:key=value...], e.g. "
        "'blob-upload-chunk:PATCH:416:times=1', 'blob:GET:delay=0.5:times=none', 'manifest:auth_challenge=true'",
    )
    args = parser.parse_args(argv)

    registry = FakeRegistry(delete_enabled=args.delete_enabled)
    for spec in args.fault:
        try:
            registry.inject(**parse_fault_spec(spec))
        except (TypeError, ValueError) as error:
            parser.error(f"--fault {spec!r}: {error}")
    server = make_server(args.host, args.port, registry, threaded=True)
    print(f"fakeregistry serving http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
