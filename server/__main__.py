"""`python -m server`: read settings, prepare TLS, serve until SIGINT/SIGTERM.

User errors (bad settings, unreadable PEM, port in use) end with one line on stderr
and exit code 2; a signal ends with exit code 0 after closing every socket with 1001.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import logging
import os
import signal
import ssl
import sys
from urllib.parse import urlsplit

from aiohttp import web

from . import state
from .app import create_app
from .appkeys import Site
from .banner import banner
from .config import ReloadMode, Settings, SettingsError, load_settings, port_unusable, settings_help
from .hosts import SERVED_NAMES
from .listener import EdgeLimits, GuardedSite
from .netinfo import certificate_identities, public_urls
from .tls import certificate_names, ensure_local_certificates, server_context

log = logging.getLogger("server")


def prepare(settings: Settings) -> tuple[Site, ssl.SSLContext, list[str]]:
    """TLS material, the public URLs and the names in a user-supplied certificate;
    raises SettingsError for user errors."""
    names: list[str] = []
    if settings.key_file and settings.cert_file:
        context = server_context(settings.cert_file, settings.key_file, from_env=True)
        names = certificate_names(settings.cert_file)
        ca_file = None
    else:
        files = ensure_local_certificates(settings.certs_dir, certificate_identities())
        if files.ca_created:
            log.info("event=ca-created path=%s", files.ca)
        if files.leaf_issued:
            log.info("event=cert-issued path=%s", files.cert)
        context = server_context(files.cert, files.key, from_env=False)
        ca_file = files.ca
    return Site(urls=public_urls(settings.host, settings.port), ca_file=ca_file), context, names


async def serve(settings: Settings) -> None:
    if settings.redis_url is not None:  # before anything else, so the error is the only line
        from .cluster import check_reachable  # only here: one instance never imports redis

        await check_reachable(settings.redis_url)
    site_info, context, cert_names = prepare(settings)
    app = create_app(settings, site_info, host_names=cert_names)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        # Also the request-header timeout: aiohttp arms it when the TLS handshake is done
        # and closes a connection that has not completed a request by then.
        keepalive_timeout=settings.idle_timeout,
    )
    await runner.setup()
    tcp = GuardedSite(
        runner,
        settings.host,
        settings.port,
        ssl_context=context,
        limits=EdgeLimits(settings.handshake_timeout, settings.max_connections_per_address),
        names=app[SERVED_NAMES],
        fallback_host=urlsplit(site_info.urls[0]).netloc if site_info.urls else f"localhost:{settings.port}",
        reuse_port=settings.worker is not None,  # WORKERS: the workers share the port
    )
    try:
        await tcp.start()
    except OSError as exc:
        await runner.cleanup()
        raise port_unusable(settings.host, settings.port, exc.strerror or str(exc)) from None
    print(banner(site_info.urls, site_info.ca_file, qr=True), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("event=shutdown")
    try:
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_BUDGET)
    except TimeoutError:  # something did not honour its own timeout: exit anyway, state saved
        log.warning("event=shutdown-overrun seconds=%g state_saved=%s", SHUTDOWN_BUDGET, state.save_now(app))


# SIGTERM to exit: sockets get a polite close (bounded in rtc.close_sockets), then
# whatever is left is abandoned; README promises an exit within 2 s.
SHUTDOWN_BUDGET = 2.0

# asyncio's TLS transport gives every connection a zero-filled read buffer of
# `SSLProtocol.max_size` (256 KiB): most of an idle socket's memory. The buffer only
# stages ciphertext for one recv() on its way into OpenSSL, which reassembles records
# itself, so 8 KiB costs no measurable throughput (bench/relay.py, README "Performance").
TLS_READ_BUFFER = 8 * 1024


def raise_file_limit(wanted: int) -> None:
    """Every socket is a file descriptor; a common soft limit of 1024 would refuse
    connections below MAX_CLIENTS with errors instead of a clean 503."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("event=fd-limit limit=%d max_clients=%d hint='raise ulimit -n'", target, wanted)


def run(settings: Settings) -> None:
    # uvloop when installed (the `fast` extra): its TLS and socket layers are C, where
    # asyncio's are Python, the largest cost in relaying (bench/relay.py: ~1.5x messages/s).
    # Its 256 KiB TLS read buffer is malloc'd, not zero-filled, so an idle socket only
    # holds the pages it touched (48 KiB per idle socket with 3,000 clients, README).
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER  # the plain-asyncio fallback
    raise_file_limit(settings.max_clients + 256)  # + files, listening sockets, aiortc
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))


def main() -> int:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(settings_help())
        return 0
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        if settings.workers > 1:  # server/workers.py: this process supervises; `--worker N` serves
            from .workers import supervise, worker_settings

            if not sys.argv[1:]:
                return supervise(settings, prepare)
            settings = worker_settings(settings, sys.argv[1:])
        if settings.reload is ReloadMode.SERVER:
            from .supervisor import run_with_restarts

            run_with_restarts(settings, entry_module="server.__main__")
        else:
            run(settings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
