"""The command line: ``fakeregistry serve`` starts a throwaway registry."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from werkzeug.serving import make_server

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
    args = parser.parse_args(argv)

    registry = FakeRegistry(delete_enabled=args.delete_enabled)
    server = make_server(args.host, args.port, registry, threaded=True)
    print(f"fakeregistry serving http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
