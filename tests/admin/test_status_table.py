"""The status table (`crmsync status`, the demo): each rep's configuration, read at once."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from crmsync.admin.reports import status_table
from crmsync.domain.records import User
from crmsync.domain.settings import SyncConfig
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.store.test_cycle_reads import statements


def statements_for_table(service: SyncService, reps: list[User]) -> int:
    """How many SQL statements the state store runs while the table for ``reps`` is made."""
    with statements(service.store) as run:
        status_table(service, reps)
    return len(run)


def test_the_table_reads_as_many_statements_for_ten_reps_as_for_two(tmp_path: Path) -> None:
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        sales = service.crm.create_profile("Sales")
        reps = [
            service.crm.create_user(
                f"rep{n}@example.com", f"Rep {n}", profile_id=sales.id if n % 2 else None
            )
            for n in range(10)
        ]
        service.store.save_config(SyncConfig("By profile", profile_ids=(sales.id,)))
        service.store.save_config(SyncConfig("Direct", user_ids=(reps[0].id, reps[1].id)))

        assert statements_for_table(service, reps[:2]) == statements_for_table(service, reps)

        shown = Console(record=True, width=200)
        shown.print(status_table(service, reps[:4]))
        rows = {
            line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in shown.export_text().splitlines()
            if "@example.com" in line
        }
    # A direct assignment wins over the profile's; a rep covered by neither has none.
    assert rows == {
        "rep0@example.com": "Direct",
        "rep1@example.com": "Direct",
        "rep2@example.com": "none",
        "rep3@example.com": "By profile",
    }
