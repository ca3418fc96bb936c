"""What a rep's next cycle would do, read from both sides without writing anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import Direction, SyncConfig
from crmsync.domain.sync import FolderMissing, SyncError
from crmsync.engine.cycle import preview_kind
from crmsync.engine.planner import Action
from crmsync.groupware.dav import WouldWrite
from crmsync.service.mailboxes import SERVICE_PASSWORD, MailServer
from crmsync.service.policies import direction_of
from crmsync.service.rep_cycle import KINDS, mailbox_kinds

if TYPE_CHECKING:
    from crmsync.service.runner import SyncService


@dataclass
class RepPreview:
    """The actions a rep's next cycle would take per kind, or why none can be listed."""

    rep: User
    config: SyncConfig | None
    kinds: dict[ItemKind, list[Action]] = field(default_factory=dict)
    note: str | None = None


def preview_rep(service: SyncService, user: User, config: SyncConfig | None) -> RepPreview:
    """What the rep's next cycle would do under ``config`` (default: the rep's active
    configuration), reading both sides and writing nothing anywhere."""
    store = service.store
    config = config or store.effective_config(user)
    preview = RepPreview(user, config)
    if config is None:
        preview.note = "no active configuration covers this rep"
        return preview
    settings = service.org_settings()
    try:
        server = MailServer(
            settings,
            store.get_secret(SERVICE_PASSWORD),
            service.retry,
            read_only=True,
            rep_credentials=store.rep_credentials,
        )
    except SyncError as failure:
        preview.note = f"{failure.message} ({failure.suggestion})"
        return preview
    try:
        fields = service.contact_fields(config)
        mailbox = server.open(user.email, fields, user.time_zone, mailbox_kinds(config))
        guard = service.delete_guard(settings, confirmed=store.deletes_confirmed(user.id))
        for kind in KINDS:
            if direction_of(config, kind) is Direction.NONE:
                continue
            preview.kinds[kind] = preview_kind(
                user.id,
                kind,
                *service.sides(user, kind, config, fields, mailbox),
                store,
                service.policy(config, kind, user, settings, guard, fields),
            )
    except (WouldWrite, FolderMissing) as missing:
        # DAV refuses the write; the Microsoft backends report the folder as missing.
        if isinstance(missing, FolderMissing) and missing.folder != "contacts":
            preview.note = f"{missing.message} ({missing.suggestion})"
        else:
            preview.note = (
                "the rep's calendar or contacts folder does not exist yet: the "
                "first cycle creates it, then copies the rep's CRM items there"
            )
    except SyncError as failure:
        preview.note = f"{failure.message} ({failure.suggestion})"
    finally:
        server.close()
    return preview
