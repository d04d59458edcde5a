"""What a demo seeding run did, and the secrets it made (shown once)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credential:
    """A secret created by this run, shown once: a staff password or a device token."""

    kind: str  # "staff", "kiosk" or "display"
    name: str  # username or device name
    role: str
    centre: str  # centre name, "" for city-wide accounts
    secret: str


@dataclass
class DemoReport:
    """What a seeding run added; `credentials` holds the secrets to show once."""

    centres_laid_out: int = 0
    hubs_added: int = 0
    services: int = 0
    counters: int = 0
    field_links: int = 0
    credentials: list[Credential] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.centres_laid_out} centres laid out, {self.hubs_added} hubs added, "
            f"{self.services} services, {self.counters} counters, "
            f"{self.field_links} field links, {len(self.credentials)} new credentials"
        )
