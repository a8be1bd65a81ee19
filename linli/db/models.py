"""Imports every domain's models so ``Base.metadata`` knows all tables (Alembic, tests)."""

from linli.access import models as access_models
from linli.auth import models as auth_models
from linli.billing import models as billing_models
from linli.core import models as core_models
from linli.db.base import Base
from linli.estate import models as estate_models
from linli.imports import models as imports_models
from linli.notices import models as notices_models
from linli.notifications import models as notifications_models
from linli.payments import models as payments_models
from linli.platform import models as platform_models
from linli.residents import models as residents_models
from linli.staff import models as staff_models
from linli.tenancy import models as tenancy_models
from linli.votes import models as votes_models
from linli.workorders import models as workorders_models

__all__ = [
    "Base",
    "access_models",
    "auth_models",
    "billing_models",
    "core_models",
    "estate_models",
    "imports_models",
    "notices_models",
    "notifications_models",
    "payments_models",
    "platform_models",
    "residents_models",
    "staff_models",
    "tenancy_models",
    "votes_models",
    "workorders_models",
]
