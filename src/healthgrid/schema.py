"""The full schema: imports every context's models so ``Base.metadata`` is complete.

Listed explicitly (nothing is auto-discovered); Alembic's env and the migration tests use it.
"""

from . import outbox  # noqa: F401
from .db import Base
from .notifications import models as notifications_models  # noqa: F401
from .patients import models as patients_models  # noqa: F401
from .referrals import models as referrals_models  # noqa: F401
from .registry import models as registry_models  # noqa: F401
from .results import models as results_models  # noqa: F401
from .scheduling import models as scheduling_models  # noqa: F401
from .security import models as security_models  # noqa: F401
from .surveillance import models as surveillance_models  # noqa: F401

metadata = Base.metadata
