"""`python -m server`: read settings, prepare TLS, serve until SIGINT/SIGTERM.

User errors (bad settings, unreadable PEM, port in use) end with one line on stderr
and exit code 2; a signal ends with exit code 0 after closing every socket with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from .app import create_app
from .appkeys import Site
from .banner import banner
from .config import ReloadMode, Settings, SettingsError, load_settings
from .netinfo import certificate_identities, public_urls
from .tls import ensure_local_certificates, server_context

log = logging.getLogger("server")


def prepare(settings: Settings) -> tuple[Site, object]:
    """TLS material and the public URLs; raises SettingsError for user errors."""
    if settings.key_file and settings.cert_file:
        context = server_context(settings.cert_file, settings.key_file, from_env=True)
        ca_file = None
    else:
        files = ensure_local_certificates(settings.certs_dir, certificate_identities())
        if files.ca_created:
            log.info("event=ca-created path=%s", files.ca)
        if files.leaf_issued:
            log.info("event=cert-issued path=%s", files.cert)
        context = server_context(files.cert, files.key, from_env=False)
        ca_file = files.ca
    return Site(urls=public_urls(settings.host, settings.port), ca_file=ca_file), context


async def serve(settings: Settings) -> None:
    site_info, context = prepare(settings)
    app = create_app(settings, site_info)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    tcp = web.TCPSite(
        runner,
        settings.host,
        settings.port,
        ssl_context=context,  # type: ignore[arg-type]
        reuse_address=True,
    )
    try:
        await tcp.start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(
            f"PORT={settings.port} on HOST={settings.host or '(all interfaces)'} cannot be used "
            f"({exc.strerror or exc}); set PORT to a free port or stop the other server"
        ) from None
    print(banner(site_info.urls, site_info.ca_file, qr=True), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("event=shutdown")
    await runner.cleanup()


def run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))


def main() -> int:
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
        if settings.reload is ReloadMode.SERVER:
            from .livereload import run_with_restarts

            run_with_restarts(settings)
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
