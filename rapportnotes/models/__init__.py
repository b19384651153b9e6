"""Models, one module per aggregate. Importing this package registers every table."""

from rapportnotes.models.audit import AuditEvent
from rapportnotes.models.behaviour import POLARITIES, Behaviour
from rapportnotes.models.contact import MODALITIES, Contact, ContactBehaviour
from rapportnotes.models.idempotency import IdempotencyRecord
from rapportnotes.models.organisation import Organisation
from rapportnotes.models.team import MEMBER_ROLES, Team, TeamMember
from rapportnotes.models.token import RefreshToken, RevokedToken
from rapportnotes.models.user import ROLES, User

__all__ = [
    "MEMBER_ROLES",
    "MODALITIES",
    "POLARITIES",
    "ROLES",
    "AuditEvent",
    "Behaviour",
    "Contact",
    "ContactBehaviour",
    "IdempotencyRecord",
    "Organisation",
    "RefreshToken",
    "RevokedToken",
    "Team",
    "TeamMember",
    "User",
]
