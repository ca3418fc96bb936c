"""`SalesforceCrm`: one Salesforce org as crmsync's CRM, mirroring `BuiltinCrm`'s surface.

What the service uses of a CRM: ``side`` (a rep's contacts or events as an `ItemSide`),
users and profiles (reps are active standard users, matched to mailboxes by email;
configurations assign users and profiles), ``custom_field_types`` (the custom contact
fields a field mapping may name) and ``close``. Users and profiles are read at most once
per ``directory_ttl`` seconds; describes once per connection; changes once per object per
``poll_interval`` for the whole org (see `feed`). ``calls_made`` and ``usage`` are the
API budget's numbers.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from crmsync.crm.salesforce.config import SalesforceConfig
from crmsync.crm.salesforce.connection import ApiUsage, RetryPolicy, SalesforceConnection
from crmsync.crm.salesforce.contact_map import contact_select
from crmsync.crm.salesforce.contacts import ContactSide
from crmsync.crm.salesforce.describe import DescribeCache
from crmsync.crm.salesforce.errors import ConfigurationProblem
from crmsync.crm.salesforce.event_map import event_select
from crmsync.crm.salesforce.events import SYNCED_EVENTS, EventSide
from crmsync.crm.salesforce.feed import ObjectFeed
from crmsync.crm.salesforce.limits import daily_api_usage
from crmsync.crm.salesforce.query import plain, query
from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap, FieldType
from crmsync.domain.records import ItemKind, Profile, User

# Deletions stay in the Recycle Bin (and in queryAll and getDeleted) for 15 days; a cursor
# older than that may have missed some, so the rep gets a reconciling full listing.
DELETION_LOG_AGE = dt.timedelta(days=15)
_USER_FIELDS = "Id, Username, Email, Name, ProfileId, TimeZoneSidKey, IsActive"


def _user(row: dict[str, Any]) -> User:
    return User(
        id=str(row["Id"]),
        email=str(row.get("Email") or ""),
        name=str(row.get("Name") or ""),
        profile_id=row.get("ProfileId"),
        time_zone=str(row.get("TimeZoneSidKey") or "UTC"),
        active=bool(row.get("IsActive")),
    )


class SalesforceCrm:
    """One org through its REST API, shared by every rep's cycle (thread-safe)."""

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 60.0,
        directory_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        connection: SalesforceConnection | None = None,
    ) -> None:
        self.config = config
        self.conn = connection or SalesforceConnection(config, client, retry=retry)
        self.url = config.base_url
        self.marker_field = config.marker_field
        self.describe = DescribeCache(self.conn)
        self.poll_interval = poll_interval
        self.directory_ttl = directory_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._feeds: dict[str, ObjectFeed] = {}
        self._users: tuple[float, list[User]] | None = None
        self._profiles: tuple[float, list[Profile]] | None = None
        self._shared_activities: bool | None = None

    def __repr__(self) -> str:
        return f"SalesforceCrm({self.url})"

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SalesforceCrm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- sides

    def side(
        self,
        rep_id: str,
        kind: ItemKind,
        *,
        auto_relate: bool = False,
        all_owners: bool = False,
        field_map: ContactFieldMap = IDENTITY_MAP,
    ) -> ContactSide | EventSide:
        """The rep's contacts (person accounts included; with ``all_owners``, every
        contact) or events, as `BuiltinCrm.side` gives them."""
        if kind is ItemKind.CONTACT:
            missing = [f for f in _custom(field_map) if f not in self.contact_custom_fields()]
            if missing:
                raise ConfigurationProblem(
                    f"the field mappings name Contact fields Salesforce does not have (or the "
                    f"integration user cannot edit): {', '.join(missing)}",
                    "Create the fields in Salesforce, give the user access, or change the "
                    "configuration's field mappings.",
                )
            return ContactSide(self, rep_id, all_owners=all_owners, field_map=field_map)
        if kind is ItemKind.EVENT:
            return EventSide(self, rep_id, auto_relate=auto_relate)
        raise ValueError(f"Salesforce syncs contacts and events, not {kind}")

    def feed(self, sobject: str) -> ObjectFeed:
        """The org's shared change feed of ``sobject`` (Contact or Event)."""
        with self._lock:
            if sobject not in self._feeds:
                if sobject == "Contact":
                    self._feeds[sobject] = ObjectFeed(
                        self.conn,
                        "Contact",
                        self.contact_fields,
                        interval=self.poll_interval,
                        clock=self.clock,
                    )
                else:
                    self._feeds[sobject] = ObjectFeed(
                        self.conn,
                        "Event",
                        self.event_fields,
                        where=SYNCED_EVENTS,
                        interval=self.poll_interval,
                        clock=self.clock,
                    )
            return self._feeds[sobject]

    def too_old(self, feed: ObjectFeed, since: dt.datetime) -> bool:
        """Whether a cursor predates what the deletion log still holds."""
        head = feed.watermark()
        return head is not None and head - since > DELETION_LOG_AGE

    # ---------------------------------------------------------------- org metadata

    def _object_fields(self, sobject: str) -> dict[str, Any]:
        info = self.describe.get(sobject)
        if info is None:
            raise ConfigurationProblem(
                f"the integration user cannot see the {sobject} object",
                f"Give the user read and edit access to {sobject}.",
            )
        return info.fields

    def person_accounts(self) -> bool:
        """Whether the org has person accounts (Contact then has IsPersonAccount)."""
        return "IsPersonAccount" in self._object_fields("Contact")

    def contact_custom_fields(self) -> list[str]:
        return sorted(self.custom_field_types())

    def custom_field_types(self) -> dict[str, FieldType]:
        """The Contact custom fields a mapping may use: those of a type crmsync converts
        and the integration user may update (crmsync's own marker left out)."""
        fields = self._object_fields("Contact")
        return {
            name: info.domain_type
            for name, info in fields.items()
            if info.custom
            and info.updateable
            and info.domain_type is not None
            and name != self.marker_field
        }

    def require_marker(self, sobject: str) -> None:
        """Raise `ConfigurationProblem` unless ``sobject`` has crmsync's marker field."""
        if self.marker_field not in self._object_fields(sobject):
            raise ConfigurationProblem(
                f"{sobject} has no {self.marker_field} field for crmsync's marker (or the "
                "integration user cannot see it)",
                "Run `crmsync setup salesforce ... --create-fields`, or create it by hand on "
                f"{sobject} (Setup > Object Manager > "
                f"{'Activity' if sobject == 'Event' else sobject} > Fields & "
                "Relationships: Text, length 255"
                + (", External ID, Unique" if sobject != "Event" else "")
                + ") and give the integration user read and edit access to it, as the "
                "admin guide's 'Connect Salesforce' section shows.",
            )

    def contact_fields(self) -> list[str]:
        self.require_marker("Contact")
        return contact_select(
            self.contact_custom_fields(), self.person_accounts(), self.marker_field
        )

    def event_fields(self) -> list[str]:
        self.require_marker("Event")
        return event_select(self.marker_field)

    def shared_activities(self) -> bool:
        """Whether Shared Activities is on (Event then has EventWhoIds)."""
        if self._shared_activities is None:
            self._shared_activities = "EventWhoIds" in self._object_fields("Event")
        return self._shared_activities

    def forget_shared_activities(self) -> None:
        self._shared_activities = None
        self.describe.forget()

    def api_usage(self) -> ApiUsage:
        """The org's API calls in the last 24 hours, from ``/limits``."""
        return daily_api_usage(self.conn)

    @property
    def calls_made(self) -> int:
        return self.conn.calls_made

    @property
    def usage(self) -> ApiUsage | None:
        return self.conn.usage

    # ---------------------------------------------------------------- users, profiles

    def _fresh(self, cached: tuple[float, Any] | None) -> bool:
        return cached is not None and self.clock() - cached[0] < self.directory_ttl

    def list_users(self, *, active: bool | None = None) -> list[User]:
        """Standard (licensed) users, by email; cached for ``directory_ttl``."""
        cached = self._users
        if not self._fresh(cached):
            soql = f"SELECT {_USER_FIELDS} FROM User WHERE UserType = 'Standard' ORDER BY Email"
            users = [_user(plain(r)) for r in query(self.conn, soql)]
            self._users = cached = (self.clock(), users)
        assert cached is not None
        return [u for u in cached[1] if active is None or u.active == active]

    def get_user(self, user_id: str) -> User:
        for user in self.list_users():
            if user.id == user_id:
                return user
        raise LookupError(f"no Salesforce user with id {user_id!r}")

    def get_user_by_email(self, email: str) -> User | None:
        return self.get_users_by_email([email]).get(email.lower())

    def get_users_by_email(self, emails: Iterable[str]) -> dict[str, User]:
        wanted = {e.lower() for e in emails}
        return {u.email.lower(): u for u in self.list_users() if u.email.lower() in wanted}

    def time_zone_of(self, user_id: str) -> str:
        try:
            return self.get_user(user_id).time_zone
        except LookupError:
            return "UTC"

    def list_profiles(self) -> list[Profile]:
        cached = self._profiles
        if not self._fresh(cached):
            rows = query(self.conn, "SELECT Id, Name FROM Profile ORDER BY Name")
            profiles = [Profile(str(r["Id"]), str(r.get("Name") or "")) for r in rows]
            self._profiles = cached = (self.clock(), profiles)
        assert cached is not None
        return list(cached[1])

    def get_profile(self, profile_id: str) -> Profile:
        for profile in self.list_profiles():
            if profile.id == profile_id:
                return profile
        raise LookupError(f"no Salesforce profile with id {profile_id!r}")

    def find_profile(self, name: str) -> Profile | None:
        return next((p for p in self.list_profiles() if p.name == name), None)


def _custom(field_map: ContactFieldMap) -> list[str]:
    return [
        crm.removeprefix("custom:")
        for crm, _ in field_map.fields.values()
        if crm.startswith("custom:")
    ]
