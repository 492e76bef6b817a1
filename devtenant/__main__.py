"""`python -m devtenant --tenant FILE`: serve a local Microsoft 365 tenant over HTTPS (dev tool).

Binds to loopback by default; a non-loopback address must be given explicitly with --host. The test
controls (`/_devtenant/...`) are on by default here because this is a development tool; pass
--no-controls to serve only the Microsoft surfaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import sys
from pathlib import Path

from devtenant.app import base_url_for, bind_socket, build_app, start_site
from devtenant.subscriptions import hub_for
from devtenant.tenant import load_tenant
from devtenant.tls import ensure_tls_files, server_ssl_context

DEFAULT_HOST = "127.0.0.1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtenant", description=__doc__)
    p.add_argument("--tenant", required=True, type=Path, help="tenant file (see README.md)")
    p.add_argument("--host", default=None, help=f"bind address (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=8443, help="port (0 = pick a free one)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data/devtenant"),
        help="TLS material and signing keys",
    )
    p.add_argument(
        "--no-controls",
        dest="controls",
        action="store_false",
        help="do not serve /_devtenant/... test controls",
    )
    p.add_argument(
        "--print-env",
        action="store_true",
        help="print OPENSLOT_* settings pointing at this server",
    )
    p.add_argument(
        "--notification-ca",
        type=Path,
        action="append",
        default=[],
        help="also trust this CA (PEM) when posting change notifications (repeatable)",
    )
    p.add_argument(
        "--allow-http-notifications",
        action="store_true",
        help="accept http:// notification URLs (Graph never does; local receivers only)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p.parse_args(argv)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_lines(base_url: str, ca_path: Path, tenant_id: str, app_id: str | None) -> list[str]:
    lines = [
        f"OPENSLOT_AUTHORITY_HOST={base_url}",
        f"OPENSLOT_GRAPH_BASE_URL={base_url}/v1.0",
        f"OPENSLOT_CA_BUNDLE={ca_path.resolve()}",
        f"OPENSLOT_TENANT_ID={tenant_id}",
    ]
    if app_id:
        lines.append(f"OPENSLOT_CLIENT_ID={app_id}")
    return lines


async def serve(args: argparse.Namespace) -> None:
    host = args.host or DEFAULT_HOST
    if not _is_loopback(host) and args.host is None:
        raise SystemExit("refusing to bind a non-loopback address without --host")
    tenant = load_tenant(args.tenant)
    sock = bind_socket(host, args.port)
    base_url = base_url_for(host, sock.getsockname()[1])
    app = build_app(tenant, base_url=base_url, data_dir=args.data_dir, enable_controls=args.controls)
    hub = hub_for(tenant)
    hub.insecure_http = args.allow_http_notifications
    for ca in args.notification_ca:
        hub.trust(ca)
    runner = await start_site(app, sock, server_ssl_context(args.data_dir))
    if args.print_env:
        apps = tenant.applications()
        ca = ensure_tls_files(args.data_dir).ca_path
        for line in _env_lines(base_url, ca, tenant.tenant_id, apps[0]["appId"] if apps else None):
            print(line)  # noqa: T201 - CLI output
    print(f"devtenant ready at {base_url}", flush=True)  # noqa: T201 - CLI output
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    if args.host and not _is_loopback(args.host):
        logging.getLogger("devtenant").warning(
            "serving on non-loopback %s (controls %s)", args.host, "ON" if args.controls else "off"
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
