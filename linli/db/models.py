"""Imports every domain's models so ``Base.metadata`` knows all tables (Alembic, tests)."""

from linli.auth import models as auth_models
from linli.core import models as core_models
from linli.db.base import Base
from linli.tenancy import models as tenancy_models

__all__ = ["Base", "auth_models", "core_models", "tenancy_models"]
