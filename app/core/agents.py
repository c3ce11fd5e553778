"""Who is acting: a person, an SPV staff member, or the system itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AgentKind(enum.StrEnum):
    PERSON = "person"
    STAFF = "staff"
    SYSTEM = "system"


@dataclass(frozen=True)
class Agent:
    """The acting party every service function receives."""

    kind: AgentKind
    id: int | None
    """``person.id`` or ``staff_member.id``; None for the system."""
    personnummer: str | None = None
    is_caseworker: bool = False
    is_intake_clerk: bool = False
    component: str = ""
    """For the system: which part acted (an actor's name, a scheduler)."""
    entered_by_staff_id: int | None = None
    """A person's errand typed in from paper by this SPV clerk, on the person's behalf."""

    @property
    def audit_label(self) -> str:
        if self.kind is AgentKind.SYSTEM:
            return f"system:{self.component}"
        if self.entered_by_staff_id is not None:
            return f"staff:{self.entered_by_staff_id} for {self.kind.value}:{self.id}"
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def system(cls, component: str) -> Agent:
        return cls(AgentKind.SYSTEM, None, component=component)
