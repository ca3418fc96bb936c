"""The rep's contacts group (``CRM_Sync`` by default): found by name, created if missing.

A user contact group of that name (https://developers.google.com/people/api/rest/v1/contactGroups)
plays the part of the spec's ``Salesforce_Sync`` group: only its members sync. crmsync
stamps the group it creates with clientData, for the admin's eyes; a group the rep made
under that name is used as it is.
"""

from __future__ import annotations

from crmsync.domain.sync import AuthenticationFailed, FolderMissing, ServerUnavailable
from crmsync.groupware.google import markers
from crmsync.groupware.google import people_api as people
from crmsync.groupware.google.connection import GoogleConnection


def find_group(
    conn: GoogleConnection, rep: str, name: str, *, create: bool
) -> tuple[str | None, bool]:
    """The resource name of the rep's contact group ``name`` and whether it was created."""
    for group in people.list_groups(conn, rep):
        if group.get("name") == name and group.get("groupType") == "USER_CONTACT_GROUP":
            return str(group["resourceName"]), False
    if not create:
        return None, False
    answer = people.create_group(
        conn, rep, {"name": name, "clientData": [{"key": markers.GROUP, "value": "1"}]}
    )
    if answer.status == 409:  # made meanwhile by another worker, or by the rep
        return find_group(conn, rep, name, create=False)[0], False
    if not answer.ok or not isinstance(answer.body, dict):
        problem = conn.problem(answer, people.API, rep, f"create the contact group {name!r}")
        if isinstance(problem, AuthenticationFailed | ServerUnavailable):
            raise problem
        raise FolderMissing(
            problem.message,
            f"Create a contact label named {name!r} in Google Contacts for the rep, or check "
            "the contacts scope of the domain-wide delegation.",
            folder="contacts",
        )
    return str(answer.body["resourceName"]), True
