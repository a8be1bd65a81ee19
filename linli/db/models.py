"""Imports every domain's models so ``Base.metadata`` knows all tables (Alembic, tests)."""

from linli.auth import models as auth_models
from linli.core import models as core_models
from linli.db.base import Base
from linli.estate import models as estate_models
from linli.imports import models as imports_models
from linli.residents import models as residents_models
from linli.staff import models as staff_models
from linli.tenancy import models as tenancy_models

__all__ = [
    "Base",
    "auth_models",
    "core_models",
    "estate_models",
    "imports_models",
    "residents_models",
    "staff_models",
    "tenancy_models",
]
