"""QR passes (二维码通行证) a device checks offline, and the signatures of device commands.

A pass token is a fixed binary record signed with the community's Ed25519 key,
written as ``LQ1.`` + base64url (no padding). Layout, big-endian::

    u8  version (1)          u16 kid (community key id)
    16  community id         16  pass id            16  holder id
    u8  kind (1 resident, 2 visitor, 3 courier)
    u32 not_before (unix s)  u32 not_after (unix s)
    u16 entries (0 = unlimited)
    u8  n                    16*n access point ids
    64  Ed25519 signature over b"linli-qr-v1\\0" + everything above

Pure functions with no database: the server signs with them, the simulator and
``bench/qr_verify.py`` verify with them, and docs/device-protocol.md describes the
same bytes for vendors.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import struct
import uuid
from collections.abc import Collection, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "LQ1."
VERSION = 1
DOMAIN = b"linli-qr-v1\x00"
COMMAND_DOMAIN = b"linli-cmd-v1\x00"
_HEAD = struct.Struct(">BH16s16s16sBIIHB")
_SIG = 64
MAX_POINTS = 16
KIND_CODES = {"resident": 1, "visitor": 2, "courier": 3}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}


class Refusal(enum.StrEnum):
    """Why a device refuses a QR code; the code goes into the ``denied`` event's ``reason``."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    OTHER_COMMUNITY = "other_community"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_ACCESS_POINT = "wrong_access_point"
    REVOKED = "revoked"
    ENTRIES_USED = "entries_used"


@dataclasses.dataclass(frozen=True)
class PassClaims:
    """What a QR pass says; signed as a whole."""

    kid: int
    community_id: uuid.UUID
    pass_id: uuid.UUID
    holder_id: uuid.UUID
    kind: str
    not_before: int
    not_after: int
    entries: int  # 0 = unlimited
    access_point_ids: tuple[uuid.UUID, ...]


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    claims: PassClaims | None = None
    refusal: Refusal | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode_claims(claims: PassClaims) -> bytes:
    if not 0 < len(claims.access_point_ids) <= MAX_POINTS:
        raise ValueError(f"a pass names 1..{MAX_POINTS} access points")
    head = _HEAD.pack(
        VERSION,
        claims.kid,
        claims.community_id.bytes,
        claims.pass_id.bytes,
        claims.holder_id.bytes,
        KIND_CODES[claims.kind],
        claims.not_before,
        claims.not_after,
        min(claims.entries, 0xFFFF),
        len(claims.access_point_ids),
    )
    return head + b"".join(point.bytes for point in claims.access_point_ids)


def sign_pass(key: Ed25519PrivateKey, claims: PassClaims) -> str:
    body = encode_claims(claims)
    return PREFIX + _b64(body + key.sign(DOMAIN + body))


def decode_token(token: str) -> tuple[PassClaims, bytes, bytes] | None:
    """Claims, signed bytes and signature of a token, or None if it is not one."""
    if not token.startswith(PREFIX) or len(token) > 1024:
        return None
    try:
        raw = _unb64(token[len(PREFIX) :])
    except ValueError:
        return None
    if len(raw) < _HEAD.size + _SIG:
        return None
    body, signature = raw[:-_SIG], raw[-_SIG:]
    try:
        version, kid, community, pass_id, holder, kind, nbf, naf, entries, n = _HEAD.unpack_from(
            body
        )
    except struct.error:
        return None
    if version != VERSION or kind not in KIND_NAMES or len(body) != _HEAD.size + 16 * n or n == 0:
        return None
    points = tuple(
        uuid.UUID(bytes=body[_HEAD.size + 16 * i : _HEAD.size + 16 * (i + 1)]) for i in range(n)
    )
    claims = PassClaims(
        kid=kid,
        community_id=uuid.UUID(bytes=community),
        pass_id=uuid.UUID(bytes=pass_id),
        holder_id=uuid.UUID(bytes=holder),
        kind=KIND_NAMES[kind],
        not_before=nbf,
        not_after=naf,
        entries=entries,
        access_point_ids=points,
    )
    return claims, body, signature


class PassVerifier:
    """What a device holds to check passes offline: community keys, revocations, use counts.

    ``uses`` counts entries per pass on this device, so a visitor pass for 2 entries
    opens twice here even with the network down; the server reconciles the counts
    of all devices from their events.
    """

    def __init__(
        self,
        *,
        community_id: uuid.UUID,
        access_point_id: uuid.UUID,
        keys: Mapping[int, bytes],
        revoked: Collection[uuid.UUID] = (),
    ) -> None:
        self.community_id = community_id
        self.access_point_id = access_point_id
        self.keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in keys.items()}
        self.revoked: set[uuid.UUID] = set(revoked)
        self.uses: dict[uuid.UUID, int] = {}

    def check(self, token: str, *, now: float, consume: bool = True) -> Verdict:
        decoded = decode_token(token)
        if decoded is None:
            return Verdict(False, refusal=Refusal.MALFORMED)
        claims, body, signature = decoded
        key = self.keys.get(claims.kid)
        if key is None:
            return Verdict(False, claims, Refusal.UNKNOWN_KEY)
        try:
            key.verify(signature, DOMAIN + body)
        except InvalidSignature:
            return Verdict(False, claims, Refusal.BAD_SIGNATURE)
        if claims.community_id != self.community_id:
            return Verdict(False, claims, Refusal.OTHER_COMMUNITY)
        if now < claims.not_before:
            return Verdict(False, claims, Refusal.NOT_YET_VALID)
        if now >= claims.not_after:
            return Verdict(False, claims, Refusal.EXPIRED)
        if self.access_point_id not in claims.access_point_ids:
            return Verdict(False, claims, Refusal.WRONG_ACCESS_POINT)
        if claims.pass_id in self.revoked:
            return Verdict(False, claims, Refusal.REVOKED)
        used = self.uses.get(claims.pass_id, 0)
        if claims.entries and used >= claims.entries:
            return Verdict(False, claims, Refusal.ENTRIES_USED)
        if consume and claims.entries:
            self.uses[claims.pass_id] = used + 1
        return Verdict(True, claims)


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


# --- signed commands and acknowledgements ------------------------------------------------------


def sign_command(key: Ed25519PrivateKey, command_text: str) -> str:
    """Signature (base64url) over the exact UTF-8 bytes of a command's JSON text."""
    return _b64(key.sign(COMMAND_DOMAIN + command_text.encode()))


def verify_command(key: Ed25519PublicKey, command_text: str, signature: str) -> bool:
    try:
        key.verify(_unb64(signature), COMMAND_DOMAIN + command_text.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


def ack_message(reply_to: str, device_id: uuid.UUID | str, status: str) -> bytes:
    """The bytes a device signs to acknowledge a command: ``ack|<mid>|<device>|<status>``."""
    return f"ack|{reply_to}|{device_id}|{status}".encode()


def sign_ack(key: Ed25519PrivateKey, reply_to: str, device_id: uuid.UUID | str, status: str) -> str:
    return _b64(key.sign(ack_message(reply_to, device_id, status)))


def verify_ack(
    public_key: bytes, reply_to: str, device_id: uuid.UUID | str, status: str, signature: str
) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            _unb64(signature), ack_message(reply_to, device_id, status)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def b64encode(raw: bytes) -> str:
    return _b64(raw)


def b64decode(text: str) -> bytes:
    return _unb64(text)


def claims_for(
    *,
    kid: int,
    community_id: uuid.UUID,
    pass_id: uuid.UUID,
    holder_id: uuid.UUID,
    kind: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    entries: int | None,
    access_point_ids: Sequence[uuid.UUID],
) -> PassClaims:
    return PassClaims(
        kid=kid,
        community_id=community_id,
        pass_id=pass_id,
        holder_id=holder_id,
        kind=kind,
        not_before=unix(valid_from),
        not_after=unix(valid_until),
        entries=entries or 0,
        access_point_ids=tuple(access_point_ids),
    )
