"""Developer portal pages: register, create an app, credentials, review submission, CSRF."""

from __future__ import annotations

import re
import secrets


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def test_register_create_app_and_credentials(client) -> None:
    email = f"d{secrets.token_hex(4)}@locker.example"
    registered = await client.post(
        "/developers/register",
        data={
            "company_name": "丰邻",
            "email": email,
            "display_name": "李",
            "password": "a-long-password-1",
        },
    )
    assert registered.status_code == 303
    client.cookies.set("linli_developer", registered.cookies["linli_developer"], path="/developers")
    home = await client.get("/developers")
    assert home.status_code == 200
    token = _csrf(home.text)
    # no CSRF token: refused
    refused = await client.post("/developers/apps", data={"name": "x", "scope": "estate:read"})
    assert refused.status_code == 403
    malicious = await client.post(
        "/developers/apps", data={"csrf_token": token, "name": "<script>x</script>"}
    )
    assert malicious.status_code == 422 and "<script>x" not in malicious.text
    created = await client.post(
        "/developers/apps",
        data={
            "csrf_token": token,
            "name": "快递柜",
            "scope": ["estate:read", "parcels:write"],
            "event": ["residents.resident.moved_in"],
            "webhook_url": "https://locker.example/hooks",
            "redirect_uris": "https://locker.example/cb",
        },
    )
    assert created.status_code == 200, created.text[:500]
    assert "whsec_" in created.text
    app_id = re.search(r"/developers/apps/([0-9a-f-]{36})/credentials", created.text).group(1)  # type: ignore[union-attr]
    creds = await client.post(
        f"/developers/apps/{app_id}/credentials", data={"csrf_token": token, "environment": "test"}
    )
    assert creds.status_code == 200 and "test_" in creds.text
    submitted = await client.post(f"/developers/apps/{app_id}/submit", data={"csrf_token": token})
    assert submitted.status_code == 303
    page = await client.get(f"/developers/apps/{app_id}")
    assert "pending" in page.text
    edited = await client.post(
        f"/developers/apps/{app_id}/manifest",
        data={"csrf_token": token, "name": "快递柜 Pro", "scope": ["estate:read"]},
    )
    assert edited.status_code == 303
    assert "快递柜 Pro" in (await client.get(f"/developers/apps/{app_id}")).text
    client.cookies.clear()
    assert (await client.get(f"/developers/apps/{app_id}")).status_code in (401, 303)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_icon_upload_is_checked_and_kept(client) -> None:
    registered = await client.post(
        "/developers/register",
        data={
            "company_name": "丰邻",
            "email": f"d{secrets.token_hex(4)}@locker.example",
            "display_name": "李",
            "password": "a-long-password-1",
        },
    )
    client.cookies.set("linli_developer", registered.cookies["linli_developer"], path="/developers")
    token = _csrf((await client.get("/developers")).text)
    fields = {"csrf_token": token, "name": "快递柜", "scope": ["estate:read"]}
    svg = await client.post(
        "/developers/apps",
        data=fields,
        files={"icon": ("x.svg", b"<svg onload=alert(1)>", "image/svg+xml")},
    )
    assert svg.status_code == 422 and "image/png" in svg.text
    disguised = await client.post(
        "/developers/apps", data=fields, files={"icon": ("x.png", b"GIF89a....", "image/png")}
    )
    assert disguised.status_code == 422
    huge = await client.post(
        "/developers/apps",
        data=fields,
        files={"icon": ("x.png", PNG + b"0" * 70_000, "image/png")},
    )
    assert huge.status_code == 422
    created = await client.post(
        "/developers/apps", data=fields, files={"icon": ("x.png", PNG, "image/png")}
    )
    assert created.status_code == 200, created.text[:300]
    app_id = re.search(r"/developers/apps/([0-9a-f-]{36})/icon", created.text).group(1)  # type: ignore[union-attr]
    icon = await client.get(f"/developers/apps/{app_id}/icon")
    assert icon.content == PNG and icon.headers["content-type"] == "image/png"
    assert icon.headers["x-content-type-options"] == "nosniff"
    # saving the manifest without a new file keeps the icon
    saved = await client.post(
        f"/developers/apps/{app_id}/manifest", data={**fields, "name": "快递柜 2"}
    )
    assert saved.status_code == 303
    assert (await client.get(f"/developers/apps/{app_id}/icon")).content == PNG
