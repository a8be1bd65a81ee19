"""Local fakes of the payment providers (微信支付, 支付宝): their wire protocol, own keys.

What both sandboxes share: serving an ASGI app in the caller's event loop, and the
frame of their pay pages (each provider's colours).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


def page(title: str, content: str, *, background: str, accent: str, notice: str) -> str:
    """A sandbox pay page: the provider's colours around ``content`` (already escaped)."""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        f"body{{font-family:system-ui,sans-serif;background:{background};margin:0;padding:24px}}"
        ".sheet{max-width:420px;margin:auto;background:#fff;border-radius:12px;padding:24px}"
        ".amount{font-size:36px;font-weight:600;text-align:center;margin:16px 0}"
        "button{width:100%;padding:14px;border:0;border-radius:8px;font-size:17px;margin-top:12px}"
        f".pay{{background:{accent};color:#fff}}.cancel{{background:#f2f2f2;color:#333}}"
        ".badge{background:#fa9d3b;color:#fff;border-radius:4px;padding:2px 6px;font-size:12px}"
        "dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;color:#555}"
        f".notice{{padding:12px;border-radius:8px;background:{notice};text-align:center}}"
        f'</style></head><body><div class="sheet">{content}</div></body></html>'
    )


@contextlib.asynccontextmanager
async def serving(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve any ASGI ``app`` in this event loop on a free (or given) port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
