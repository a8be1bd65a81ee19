"""The embedded MQTT broker (amqtt), for installations without Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from linli.core import loops


def broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Anonymous on loopback only: the embedded broker is for one small machine.
        # The access domain's plugins keep messages for named (persistent) sessions,
        # such as the event ingest's, and fence each device into its own topics.
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            "linli.access.broker_plugins.NamedSessions": {},
            "linli.access.broker_plugins.DeviceTopics": {},
        },
    }


async def serve(
    host: str = "127.0.0.1", port: int = 1884, *, ready: asyncio.Event | None = None
) -> None:
    """Run the broker until cancelled."""
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port))
    await broker.start()
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()


def run_forever(host: str = "127.0.0.1", port: int = 1884) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        loops.run(serve(host, port))


if __name__ == "__main__":
    import sys

    run_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 1884)
