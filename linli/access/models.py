"""Tables of the access domain (门禁): access points, devices, keys, passes, events, parking.

Kinds are short strings checked by the database (not PostgreSQL enum types), so a
new device kind or event kind is one migration line, not an ``ALTER TYPE``.

``access_events`` is the hot table: written by the MQTT ingest in batches of
hundreds of rows, searched by time, person and door. It has no foreign keys
(checking five parents per row would halve the ingest rate, and the ingest has
already matched the device to its tenant and community); its primary key is
``(tenant_id, id)`` with a UUIDv7 id, so inserts append, and ``occurred_at`` has
a BRIN index for time ranges beside the btree indexes that searches use.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Enum,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk

MONEY = Numeric(14, 2)


def _kind(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class AccessPointKind(enum.StrEnum):
    COMMUNITY_GATE = "community_gate"  # 小区大门 / 人行门
    BUILDING_ENTRANCE = "building_entrance"  # 单元门
    PARKING_ENTRANCE = "parking_entrance"  # 停车场出入口


class DeviceKind(enum.StrEnum):
    DOOR_CONTROLLER = "door_controller"  # 门禁控制器
    TURNSTILE = "turnstile"  # 闸机
    VEHICLE_BARRIER = "vehicle_barrier"  # 道闸 + 车牌识别相机
    INTERCOM = "intercom"  # 可视对讲


class PassKind(enum.StrEnum):
    RESIDENT = "resident"  # 住户通行码
    VISITOR = "visitor"  # 访客通行证
    COURIER = "courier"  # 快递 / 外卖通行证


class EventKind(enum.StrEnum):
    OPEN = "open"  # a person or vehicle passed
    DENIED = "denied"
    ALARM_HELD_OPEN = "alarm_held_open"  # 门未关报警
    ALARM_FORCED = "alarm_forced"  # 强行开门
    PLATE = "plate"  # a plate read at a barrier (see result)
    REJECTED_MESSAGE = "rejected_message"  # a message the ingest refused (wrong topic, bad sig)


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class AccessPoint(TenantOwned, Base):
    """A place people or vehicles pass (出入口): a community gate, building door or car park."""

    __tablename__ = "access_points"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["building_id"], "buildings"),
        Index(None, "tenant_id", "community_id", "name", unique=True),
    )

    community_id: Mapped[uuid.UUID]
    kind: Mapped[AccessPointKind] = mapped_column(_kind(AccessPointKind))
    name: Mapped[str] = mapped_column(String(100))
    building_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class Device(TenantOwned, Base):
    """A door controller, turnstile, barrier or intercom (设备), bound to one access point.

    Only a hash of its MQTT secret and the public half of its Ed25519 key are kept:
    provisioning shows the secret and private key once, to the installer.
    """

    __tablename__ = "access_devices"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["access_point_id"], "access_points"),
        Index(None, "tenant_id", "community_id", "name", unique=True),
        Index(None, "tenant_id", "access_point_id"),
    )

    community_id: Mapped[uuid.UUID]
    access_point_id: Mapped[uuid.UUID]
    kind: Mapped[DeviceKind] = mapped_column(_kind(DeviceKind))
    name: Mapped[str] = mapped_column(String(100))
    vendor: Mapped[str] = mapped_column(String(60), default="")
    mqtt_secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    online: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    firmware: Mapped[str] = mapped_column(String(60), default="")
    revocations_version: Mapped[int] = mapped_column(BigInteger, default=0)


class CommunityKey(TenantOwned, Base):
    """A community's Ed25519 signing key (社区签名密钥): signs QR passes and device commands.

    The private key is encrypted at rest with the data key; devices get the public key.
    ``kid`` is small and per community so it fits a QR code.
    """

    __tablename__ = "access_community_keys"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", "kid", unique=True),
    )

    community_id: Mapped[uuid.UUID]
    kid: Mapped[int] = mapped_column(SmallInteger)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    retired_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Pass(TenantOwned, Base):
    """A credential to pass access points (通行证): a resident's, a visitor's or a courier's.

        The QR code carries a signed copy of the pass (holder, access points, window,
        entries); devices check it offline. ``link_hash`` addresses the public pass
        page of a visitor: the link names tenant and pass and carries a secret whose sha256
    is kept here (the secret itself is not stored).
    """

    __tablename__ = "access_passes"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["resident_id"], "residents", ondelete="SET NULL"),
        Index(None, "tenant_id", "community_id", "kind", "valid_until"),
        Index(None, "tenant_id", "resident_id"),
    )

    community_id: Mapped[uuid.UUID]
    kind: Mapped[PassKind] = mapped_column(_kind(PassKind))
    holder_name: Mapped[str] = mapped_column(String(100))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The resident this pass is for (resident passes) or who invited the visitor.
    resident_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    access_point_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    max_entries: Mapped[int | None] = mapped_column(Integer, default=None)  # None = unlimited
    used_entries: Mapped[int] = mapped_column(Integer, default=0)
    link_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    issued_by_kind: Mapped[str] = mapped_column(String(16))
    issued_by: Mapped[uuid.UUID]
    note: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Revocation(TenantOwned, Base):
    """A revoked pass, listed for devices until the pass would have expired anyway (吊销名单).

    ``version`` grows with every revocation of the community; devices report the
    version they hold and get what came after it.
    """

    __tablename__ = "access_revocations"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["pass_id"], "access_passes", ondelete="CASCADE"),
        Index(None, "tenant_id", "community_id", "version", unique=True),
        Index(None, "tenant_id", "pass_id", unique=True),
    )

    community_id: Mapped[uuid.UUID]
    pass_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime]


class AccessEvent(Base):
    """One thing that happened at a door or gate (通行记录 / 报警), as a device reported it.

    ``device_event_id`` is the id the device gave the event; with the device it is
    unique, so a message delivered twice (QoS 1) or re-sent after a crash adds nothing.
    """

    __tablename__ = "access_events"
    __table_args__ = (
        Index(None, "tenant_id", "device_id", "device_event_id", unique=True),
        Index(None, "tenant_id", "access_point_id", "occurred_at"),
        Index(
            None,
            "tenant_id",
            "resident_id",
            "occurred_at",
            postgresql_where=text("resident_id IS NOT NULL"),
        ),
        Index(None, "tenant_id", "pass_id", postgresql_where=text("pass_id IS NOT NULL")),
        Index("ix_access_events_occurred_at_brin", "occurred_at", postgresql_using="brin"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID]
    device_event_id: Mapped[str] = mapped_column(String(64))
    access_point_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    occurred_at: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    kind: Mapped[str] = mapped_column(String(24))
    method: Mapped[str] = mapped_column(String(16), default="")
    direction: Mapped[str | None] = mapped_column(String(3), default=None)
    pass_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    resident_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    plate: Mapped[str | None] = mapped_column(String(10), default=None)
    reason: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ParkingTariff(TenantOwned, Base):
    """A community's temporary-parking tariff (临停收费标准)."""

    __tablename__ = "access_parking_tariffs"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", unique=True),
    )

    community_id: Mapped[uuid.UUID]
    free_minutes: Mapped[int] = mapped_column(Integer, default=30)
    hourly: Mapped[Decimal] = mapped_column(MONEY)
    daily_cap: Mapped[Decimal] = mapped_column(MONEY)


class VehicleEntry(TenantOwned, Base):
    """A vehicle's stay in the car park (车辆进出记录): entry, exit and the fee for it."""

    __tablename__ = "access_vehicle_entries"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(
            "uq_access_vehicle_entries_inside",
            "tenant_id",
            "community_id",
            "plate",
            unique=True,
            postgresql_where=text("exited_at IS NULL"),
        ),
        Index(None, "tenant_id", "community_id", "entered_at"),
    )

    community_id: Mapped[uuid.UUID]
    plate: Mapped[str] = mapped_column(String(10))
    known: Mapped[bool] = mapped_column(default=False)  # a residents' vehicle: no fee
    entry_device_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    exit_device_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    entered_at: Mapped[dt.datetime]
    exited_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    fee: Mapped[Decimal | None] = mapped_column(MONEY, default=None)
    paid_at: Mapped[dt.datetime | None] = mapped_column(default=None)
