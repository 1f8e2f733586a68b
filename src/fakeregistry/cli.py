"""The command line: ``fakeregistry serve`` starts a throwaway registry."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

from .faults import parse_fault_spec
from .loading import load, parse_load_spec
from .registry import FakeRegistry
from .server import RegistryServer

EXAMPLES = """\
examples:
  fakeregistry serve --port 0
  fakeregistry serve --auth basic --user alice:secret
  fakeregistry serve --auth token --user alice:secret --access 'alice:team/*=pull' --anonymous-pull 'public/*'
  fakeregistry serve --fault 'blob-upload-chunk:PATCH:416:times=1' --fault 'blob:GET:delay=0.5:times=none'
  fakeregistry serve --tls --tls-dir ./certs    # HTTPS; trust ./certs/ca.crt (skopeo --cert-dir ./certs)
  fakeregistry serve --load ./layout:v1=team/app:v1 --load alpine.tar
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fakeregistry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve an in-memory registry over HTTP (or HTTPS) until Ctrl-C or SIGTERM",
        description="Serve an in-memory registry over HTTP (or HTTPS, with --tls) until Ctrl-C or SIGTERM. "
        "The first line printed names the URL; with --tls, the second names the CA certificate to trust.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=5000, help="port; 0 picks a free one (default: %(default)s)")
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS, with a throwaway CA and a certificate it signs for localhost, 127.0.0.1, ::1 and --host "
        "(needs the cryptography package: pip install 'fakeregistry[tls]')",
    )
    serve.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="with --tls (implied): keep the certificates in DIR (ca.crt, server.crt, private/server.key) "
        "and reuse them while they cover the host, so clients keep trusting them; default: a temporary directory",
    )
    serve.add_argument(
        "--no-delete", dest="delete_enabled", action="store_false", help="answer DELETE with 405 UNSUPPORTED"
    )
    serve.add_argument("--auth", choices=("basic", "token"), help="require Basic credentials, or Bearer tokens")
    serve.add_argument(
        "--user", action="append", default=[], metavar="NAME:PASSWORD", help="a user (repeatable), e.g. alice:secret"
    )
    serve.add_argument(
        "--access",
        action="append",
        default=[],
        metavar="USER:GLOB=ACTIONS",
        help="what a user may do (repeatable), e.g. 'bob:team/*=pull,push'; actions: pull, push, delete, *. "
        "Users without rules may do anything.",
    )
    serve.add_argument(
        "--anonymous-pull",
        action="append",
        nargs="?",
        const="*",
        default=[],
        metavar="GLOB",
        help="let anyone pull repositories matching GLOB (repeatable; alone: every repository)",
    )
    serve.add_argument("--token-expires-in", type=int, default=300, metavar="SECONDS", help="token lifetime")
    serve.add_argument(
        "--separate-token-host",
        action="store_true",
        help="put the token realm on another host name of this server (localhost for 127.0.0.1)",
    )
    serve.add_argument(
        "--journal-limit",
        type=int,
        default=10000,
        metavar="N",
        help="keep the latest N requests in the journal (default: %(default)s; 0: no limit)",
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable): ROUTE[:METHOD][:STATUS][:key=value...], e.g. "
        "'blob-upload-chunk:PATCH:416:times=1', 'blob:GET:delay=0.5:times=none', 'manifest:auth_challenge=true'",
    )
    serve.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="SOURCE[=REPO[:TAG]]",
        help="preload images (repeatable) from an OCI image layout, a directory or a tar (as skopeo, umoci and "
        "buildah write them), or a docker save tarball; PATH:REF picks one image of several. Without =REPO[:TAG] "
        "each image keeps its own name; with =REPO, its own tags. E.g. --load alpine.tar, --load ./layout:v1=team/app",
    )
    return parser


def registry_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> FakeRegistry:
    users = dict(_pair(text, ":", "--user", parser) for text in args.user)
    access: Dict[str, Dict[str, List[str]]] = {}
    for text in args.access:
        user, rule = _pair(text, ":", "--access", parser)
        glob, actions = _pair(rule, "=", "--access", parser)
        access.setdefault(user, {})[glob] = actions.split(",")
    options: Dict[str, Any] = dict(
        delete_enabled=args.delete_enabled,
        auth=args.auth,
        users=users,
        access=access or None,
        anonymous_pull=args.anonymous_pull,
        token_expires_in=args.token_expires_in,
        separate_token_host=args.separate_token_host,
        journal_limit=args.journal_limit or None,
    )
    try:
        registry = FakeRegistry(**options)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    for spec in args.fault:
        try:
            registry.inject(**parse_fault_spec(spec))
        except (TypeError, ValueError) as error:
            parser.error(f"--fault {spec!r}: {error}")
    for spec in args.load:
        source, destination = parse_load_spec(spec)
        try:
            loaded = load(registry, source, destination)
        except ValueError as error:  # LoadError: it names the path and the problem
            parser.error(f"--load {spec!r}: {error}")
        for image in loaded:
            print(f"fakeregistry loaded {image.reference} ({image.digest}) from {source}", file=sys.stderr, flush=True)
    return registry


def _pair(text: str, separator: str, option: str, parser: argparse.ArgumentParser) -> Any:
    left, found, right = text.partition(separator)
    if not found or not left or not right:
        parser.error(f"{option} {text!r}: expected two parts separated by {separator!r}")
    return left, right


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    registry = registry_from(args, parser)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    tls = args.tls_dir or args.tls
    try:
        server = RegistryServer(registry, args.host, args.port, tls=tls)
    except ImportError as error:  # --tls without the cryptography package
        parser.error(str(error))
    with server:
        print(f"fakeregistry serving {server.url}", flush=True)
        if server.ca_file is not None:
            print(f"fakeregistry CA certificate {server.ca_file}", flush=True)
            print(
                f"  trust it: curl --cacert {server.ca_file}; skopeo --cert-dir {os.path.dirname(server.ca_file)}; "
                f"docker: copy it to /etc/docker/certs.d/{server.host}/ca.crt",
                file=sys.stderr,
                flush=True,
            )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("fakeregistry stopped", file=sys.stderr, flush=True)
    return 0
