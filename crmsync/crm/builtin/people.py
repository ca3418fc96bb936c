"""The built-in CRM's profiles and users (the reps a configuration assigns)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Row as SqlRow

from crmsync.crm.builtin import tables, writes
from crmsync.crm.builtin.changefeed import allocate_stamps, record_deletions
from crmsync.crm.builtin.errors import Duplicate, InUse, InvalidRecord, NotFound
from crmsync.crm.builtin.rows import CODECS
from crmsync.crm.builtin.transactions import CrmTransactions
from crmsync.domain.records import Profile, User


class PeopleMixin(CrmTransactions):
    """Profiles and users: created, read, changed and deleted, each in one transaction."""

    # ---- profiles -----------------------------------------------------------------------

    def create_profile(self, name: str, *, id: str | None = None) -> Profile:
        """A new profile; raises `Duplicate` when the name or id is taken."""
        profile = Profile(id or writes.new_id("prf"), name)
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            p = tables.profiles
            taken = conn.execute(
                select(p.c.id).where(or_(p.c.id == profile.id, p.c.name == name))
            ).first()
            if taken is not None:
                raise Duplicate(f"a profile named {name!r} or with id {profile.id!r} exists")
            conn.execute(insert(p).values(id=profile.id, name=name, stamp=stamp))
        return profile

    def get_profile(self, profile_id: str) -> Profile:
        with self.reading() as conn:
            row = conn.execute(
                select(tables.profiles).where(tables.profiles.c.id == profile_id)
            ).first()
        if row is None:
            raise NotFound(f"no profile with id {profile_id!r}")
        return Profile(row.id, row.name)

    def find_profile(self, name: str) -> Profile | None:
        """The profile with exactly this name, if any."""
        with self.reading() as conn:
            row = conn.execute(
                select(tables.profiles).where(tables.profiles.c.name == name)
            ).first()
        return None if row is None else Profile(row.id, row.name)

    def update_profile(self, profile: Profile) -> Profile:
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            p = tables.profiles
            clash = conn.execute(
                select(p.c.id).where(p.c.name == profile.name, p.c.id != profile.id)
            ).first()
            if clash is not None:
                raise Duplicate(f"another profile is named {profile.name!r}")
            done = conn.execute(
                update(p).where(p.c.id == profile.id).values(name=profile.name, stamp=stamp)
            )
            if done.rowcount != 1:
                raise NotFound(f"no profile with id {profile.id!r}")
        return profile

    def delete_profile(self, profile_id: str) -> None:
        """Raises `NotFound`, or `InUse` while users are assigned to it."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            users = tables.users
            if conn.execute(select(exists().where(users.c.profile_id == profile_id))).scalar():
                raise InUse(f"profile {profile_id} is assigned to users")
            done = conn.execute(delete(tables.profiles).where(tables.profiles.c.id == profile_id))
            if done.rowcount != 1:
                raise NotFound(f"no profile with id {profile_id!r}")
            record_deletions(conn, "profile", [(profile_id, None)], stamp)

    def list_profiles(self) -> list[Profile]:
        with self.reading() as conn:
            rows = conn.execute(select(tables.profiles).order_by(tables.profiles.c.name))
            return [Profile(r.id, r.name) for r in rows]

    # ---- users --------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        name: str = "",
        *,
        profile_id: str | None = None,
        time_zone: str = "UTC",
        active: bool = True,
        id: str | None = None,
    ) -> User:
        """A new user; raises `Duplicate` when the email (in any case) or id is taken."""
        user = User(id or writes.new_id("usr"), email, name, profile_id, time_zone, active)
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            self._check_user(conn, user)
            if conn.execute(select(tables.users.c.id).where(tables.users.c.id == user.id)).first():
                raise Duplicate(f"a user with id {user.id!r} exists")
            conn.execute(insert(tables.users).values(**_user_values(user), stamp=stamp))
        return user

    def _check_user(self, conn: Connection, user: User) -> None:
        if "@" not in user.email:
            raise InvalidRecord(f"{user.email!r} is not an email address")
        _check_zone(user.time_zone)
        users = tables.users
        clash = conn.execute(
            select(users.c.id).where(
                func.lower(users.c.email) == user.email.lower(), users.c.id != user.id
            )
        ).first()
        if clash is not None:
            raise Duplicate(f"another user has the email {user.email!r}")
        if user.profile_id is not None:
            found = conn.execute(
                select(tables.profiles.c.id).where(tables.profiles.c.id == user.profile_id)
            ).first()
            if found is None:
                raise NotFound(f"no profile with id {user.profile_id!r}")

    def get_user(self, user_id: str) -> User:
        with self.reading() as conn:
            row = conn.execute(select(tables.users).where(tables.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user with id {user_id!r}")
        return _user(row)

    def get_user_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively."""
        return self.get_users_by_email([email]).get(email.lower())

    def get_users_by_email(self, emails: Iterable[str]) -> dict[str, User]:
        """Users by lower-cased email, for those of ``emails`` (any case) that exist."""
        keys = sorted({e.lower() for e in emails})
        if not keys:
            return {}
        with self.reading() as conn:
            rows = conn.execute(
                select(tables.users).where(func.lower(tables.users.c.email).in_(keys))
            )
            return {row.email.lower(): _user(row) for row in rows}

    def update_user(self, user: User) -> User:
        """Replace the user with ``user.id``; raises `NotFound`, `Duplicate`, `InvalidRecord`."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            self._check_user(conn, user)
            done = conn.execute(
                update(tables.users)
                .where(tables.users.c.id == user.id)
                .values(**_user_values(user), stamp=stamp)
            )
            if done.rowcount != 1:
                raise NotFound(f"no user with id {user.id!r}")
        return user

    def delete_user(self, user_id: str) -> None:
        """Raises `NotFound`, or `InUse` while the user owns records (reassign them first)."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            for codec in CODECS.values():
                owned = exists().where(codec.table.c.owner_id == user_id)
                if conn.execute(select(owned)).scalar():
                    raise InUse(f"user {user_id} still owns {codec.kind} records")
            done = conn.execute(delete(tables.users).where(tables.users.c.id == user_id))
            if done.rowcount != 1:
                raise NotFound(f"no user with id {user_id!r}")
            conn.execute(delete(tables.markers).where(tables.markers.c.rep_id == user_id))
            record_deletions(conn, "user", [(user_id, None)], stamp)

    def list_users(self, *, active: bool | None = None) -> list[User]:
        query = select(tables.users).order_by(tables.users.c.email)
        if active is not None:
            query = query.where(tables.users.c.active == active)
        with self.reading() as conn:
            return [_user(r) for r in conn.execute(query)]


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRecord(f"unknown time zone {name!r}") from exc


def _user(row: SqlRow[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        profile_id=row.profile_id,
        time_zone=row.time_zone,
        active=bool(row.active),
    )


def _user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "profile_id": user.profile_id,
        "time_zone": user.time_zone,
        "active": user.active,
    }
