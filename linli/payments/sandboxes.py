"""Running the payment sandboxes for the demo (``linli sandbox-pay``) and giving a demo
company merchant accounts that match them.

Both sides read the same key files under ``LINLI_HOME/sandbox-pay/`` (mode 0600): the
sandbox holds the provider's keys and the merchant's public key, the app's merchant
account holds the merchant's private key and the provider's public key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from linli.auth.actor import Actor
from linli.config import get_settings
from linli.db.engine import unit_of_work
from linli.payments import service

WECHAT_PORT = 8090
ALIPAY_PORT = 8091


def keys_dir() -> Path:
    return get_settings().home_dir() / "sandbox-pay"


def wechat_url(host: str = "127.0.0.1", port: int = WECHAT_PORT) -> str:
    return f"http://{host}:{port}"


def alipay_url(host: str = "127.0.0.1", port: int = ALIPAY_PORT) -> str:
    return f"http://{host}:{port}"


async def serve(
    host: str = "127.0.0.1", wechat_port: int = WECHAT_PORT, alipay_port: int = ALIPAY_PORT
) -> None:
    """Both sandboxes in one process until cancelled."""
    from linli.payments.sandbox import alipay as alipay_sandbox
    from linli.payments.sandbox import wechatpay as wechat_sandbox

    directory = keys_dir()
    await asyncio.gather(
        wechat_sandbox.serve(host, wechat_port, keys_path=directory / "wechatpay.json"),
        alipay_sandbox.serve(host, alipay_port, keys_path=directory / "alipay.json"),
    )


def demo_configs(
    host: str = "127.0.0.1", wechat_port: int = WECHAT_PORT, alipay_port: int = ALIPAY_PORT
) -> dict[str, dict[str, object]]:
    """Our side's merchant configurations for the sandboxes (generated once, then reused)."""
    from linli.payments.sandbox import alipay as alipay_sandbox
    from linli.payments.sandbox import wechatpay as wechat_sandbox

    directory = keys_dir()
    _, wechat = wechat_sandbox.load_or_generate(
        directory / "wechatpay.json", base_url=wechat_url(host, wechat_port)
    )
    _, alipay = alipay_sandbox.load_or_generate(
        directory / "alipay.json", gateway_url=f"{alipay_url(host, alipay_port)}/gateway.do"
    )
    return {"wechatpay": wechat.to_storage(), "alipay": alipay.to_storage()}


async def seed_demo_accounts(tenant_id: uuid.UUID, community_ids: Sequence[uuid.UUID]) -> int:
    """Sandbox merchant accounts (WeChat Pay and Alipay) for each community of the demo
    company; the sandboxes' single merchant serves them all. Returns how many were made."""
    configs = demo_configs()
    made = 0
    async with unit_of_work(tenant_id) as session:
        system = Actor.system(tenant_id)
        existing = {
            (a.community_id, a.provider)
            for a in await service.list_merchant_accounts(session, system)
            if a.active
        }
        for community_id in community_ids:
            for name, config in configs.items():
                if (community_id, name) in existing:
                    continue
                await service.create_merchant_account(
                    session,
                    system,
                    community_id=community_id,
                    provider_name=name,
                    config=dict(config),
                    name="沙箱 Sandbox",
                )
                made += 1
    return made
