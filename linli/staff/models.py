"""Staff records (员工档案): the HR side of an employee, apart from their login.

Many employees (cleaners, outsourced guards) never sign in; some logins
(a consultant) have no HR record. ``staff_user_id`` links the two when both exist.
These records feed headcount and labour-cost analytics later.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Enum, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core import audit
from linli.db.base import Base, TenantOwned, tenant_fk


class EmploymentType(enum.StrEnum):
    OWN = "own"  # 自有员工
    OUTSOURCED = "outsourced"  # 外包


class Education(enum.StrEnum):
    NONE = ""
    PRIMARY = "primary"  # 小学
    JUNIOR = "junior"  # 初中
    SENIOR = "senior"  # 高中
    VOCATIONAL = "vocational"  # 中专 / 技校
    COLLEGE = "college"  # 大专
    BACHELOR = "bachelor"  # 本科
    MASTER = "master"  # 硕士
    DOCTOR = "doctor"  # 博士


class StaffRecord(TenantOwned, Base):
    __tablename__ = "staff_records"
    __table_args__ = (
        tenant_fk(["staff_user_id"], "staff_users", ondelete="SET NULL"),
        UniqueConstraint("tenant_id", "employee_no"),
        Index(None, "tenant_id", "staff_user_id"),
    )

    employee_no: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    department: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[str] = mapped_column(String(100), default="")
    employment_type: Mapped[EmploymentType] = mapped_column(
        Enum(
            EmploymentType, name="employment_type", values_callable=lambda e: [m.value for m in e]
        ),
        default=EmploymentType.OWN,
    )
    hire_date: Mapped[dt.date | None] = mapped_column(default=None)
    birth_date: Mapped[dt.date | None] = mapped_column(default=None)
    education: Mapped[str] = mapped_column(String(20), default="")
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    left_on: Mapped[dt.date | None] = mapped_column(default=None)


class StaffCertificate(TenantOwned, Base):
    """A qualification certificate (电工证, 消防设施操作员证...) with its expiry."""

    __tablename__ = "staff_certificates"
    __table_args__ = (
        tenant_fk(["record_id"], "staff_records", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "record_id", "cert_type", "number"),
    )

    record_id: Mapped[uuid.UUID]
    cert_type: Mapped[str] = mapped_column(String(60))
    number: Mapped[str] = mapped_column(String(60))
    expires_on: Mapped[dt.date | None] = mapped_column(default=None)


class StaffRecordCommunity(Base):
    """A community an employee serves (服务项目)."""

    __tablename__ = "staff_record_communities"
    __table_args__ = (
        tenant_fk(["record_id"], "staff_records", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities", ondelete="CASCADE"),
        Index(None, "tenant_id", "community_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


# The audit trail keeps each change's community (an employee's: one they serve).
audit.community_of_target(
    "staff_record",
    tenant=StaffRecordCommunity.tenant_id,
    key=StaffRecordCommunity.record_id,
    community=StaffRecordCommunity.community_id,
)
