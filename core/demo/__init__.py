"""A demo city on top of the imported centres and catalogue: services, counters, accounts.

Everything here is a plausible *demo* layout, not the city's real organisation: which
fields share a ticket line, how many counters a centre has and which 38 wards host an
area team are chosen deterministically from the data so every run builds the same city.
Seeding only adds what is missing, so it is safe to run again after a re-import.
"""

from __future__ import annotations

from core.demo.accounts import create_device, create_staff
from core.demo.report import Credential, DemoReport
from core.demo.seeding import seed_demo

__all__ = ["Credential", "DemoReport", "create_device", "create_staff", "seed_demo"]
