"""QR passes checked offline: each bad code is refused for its own reason."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from linli.access import credentials
from linli.access.credentials import PassClaims, PassVerifier, Refusal

COMMUNITY = uuid.uuid4()
GATE = uuid.uuid4()
KEY = Ed25519PrivateKey.generate()


def _claims(**changes: object) -> PassClaims:
    now = int(time.time())
    values: dict[str, object] = {
        "kid": 1,
        "community_id": COMMUNITY,
        "pass_id": uuid.uuid4(),
        "holder_id": uuid.uuid4(),
        "kind": "visitor",
        "not_before": now - 60,
        "not_after": now + 600,
        "entries": 0,
        "access_point_ids": (GATE,),
    }
    values.update(changes)
    return PassClaims(**values)  # type: ignore[arg-type]


def _verifier(**changes: object) -> PassVerifier:
    values: dict[str, object] = {
        "community_id": COMMUNITY,
        "access_point_id": GATE,
        "keys": {1: credentials.public_bytes(KEY.public_key())},
    }
    values.update(changes)
    return PassVerifier(**values)  # type: ignore[arg-type]


def test_a_good_pass_opens_and_round_trips_its_claims() -> None:
    claims = _claims(access_point_ids=(uuid.uuid4(), GATE), entries=3)
    token = credentials.sign_pass(KEY, claims)
    assert token.startswith("LQ1.") and len(token) < 300  # fits a QR code comfortably
    verdict = _verifier().check(token, now=time.time())
    assert verdict.ok and verdict.claims == claims


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        (_claims(not_after=int(time.time()) - 1), Refusal.EXPIRED),
        (_claims(not_before=int(time.time()) + 3600), Refusal.NOT_YET_VALID),
        (_claims(community_id=uuid.uuid4()), Refusal.OTHER_COMMUNITY),
        (_claims(access_point_ids=(uuid.uuid4(),)), Refusal.WRONG_ACCESS_POINT),
        (_claims(kid=9), Refusal.UNKNOWN_KEY),
    ],
    ids=["expired", "not-yet-valid", "other-community", "other-door", "unknown-key"],
)
def test_bad_passes_are_refused_for_their_reason(claims: PassClaims, refusal: Refusal) -> None:
    verdict = _verifier().check(credentials.sign_pass(KEY, claims), now=time.time())
    assert not verdict.ok and verdict.refusal is refusal


def test_forged_codes_are_refused() -> None:
    claims = _claims()
    token = credentials.sign_pass(KEY, claims)
    # Signed by someone else's key under our kid.
    forged = credentials.sign_pass(Ed25519PrivateKey.generate(), claims)
    assert _verifier().check(forged, now=time.time()).refusal is Refusal.BAD_SIGNATURE
    # Our signature, but a longer validity written into the body.
    raw = credentials.b64decode(token[4:])
    body = bytearray(raw)
    body[1 + 2 + 16 * 3 + 1 + 4] ^= 0x7F  # a byte of not_after
    tampered = "LQ1." + credentials.b64encode(bytes(body))
    assert _verifier().check(tampered, now=time.time()).refusal is Refusal.BAD_SIGNATURE
    for junk in ("", "LQ1.", "LQ1.!!!", "hello", "LQ1." + "A" * 900, token[:-10]):
        verdict = _verifier().check(junk, now=time.time())
        assert not verdict.ok and verdict.refusal in (Refusal.MALFORMED, Refusal.BAD_SIGNATURE)


def test_a_pass_replayed_beyond_its_entries_is_refused() -> None:
    token = credentials.sign_pass(KEY, _claims(entries=2))
    verifier = _verifier()
    assert verifier.check(token, now=time.time()).ok
    assert verifier.check(token, now=time.time()).ok
    third = verifier.check(token, now=time.time())
    assert not third.ok and third.refusal is Refusal.ENTRIES_USED


def test_a_revoked_pass_is_refused_once_the_list_is_synced() -> None:
    claims = _claims()
    token = credentials.sign_pass(KEY, claims)
    verifier = _verifier()
    assert verifier.check(token, now=time.time()).ok
    verifier.revoked.add(claims.pass_id)
    assert verifier.check(token, now=time.time()).refusal is Refusal.REVOKED


def test_signed_commands_and_acks() -> None:
    text = '{"mid":"m1","type":"open"}'
    signature = credentials.sign_command(KEY, text)
    assert credentials.verify_command(KEY.public_key(), text, signature)
    assert not credentials.verify_command(KEY.public_key(), text.replace("m1", "m2"), signature)
    device_key = Ed25519PrivateKey.generate()
    device = uuid.uuid4()
    ack = credentials.sign_ack(device_key, "m1", device, "done")
    public = credentials.public_bytes(device_key.public_key())
    assert credentials.verify_ack(public, "m1", device, "done", ack)
    assert not credentials.verify_ack(public, "m1", device, "failed", ack)
    assert not credentials.verify_ack(public, "m1", device, "done", "garbage")
