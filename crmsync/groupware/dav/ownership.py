"""Is the principal (and are the folders) discovery found really the rep's?

A server may answer a delegate's request for another user's principal with the delegate's
own (Cyrus redirects into the delegate's tree; a proxy or a typo in the principal path can
do the same). Writing a rep's items there would put them into the service account's own
calendar, or another rep's. So every principal and collection is checked before use:

- the principal's ``calendar-user-address-set``, when it lists addresses, holds the rep's;
- signed in as the service account, the principal is not the account's own
  (``current-user-principal``);
- each folder lies inside the rep's home set.
"""

from __future__ import annotations

from urllib.parse import unquote

from crmsync.domain.sync import FolderMissing
from crmsync.groupware.dav.multistatus import CALDAV, DAV, Response, tag

ADDRESS_SET = tag(CALDAV, "calendar-user-address-set")
CURRENT_PRINCIPAL = tag(DAV, "current-user-principal")


def addresses_of(principal: Response) -> list[str]:
    """The ``mailto:`` addresses in the principal's calendar-user-address-set, lower-case."""
    element = principal.props.get(ADDRESS_SET)
    if element is None:
        return []
    found = []
    for href in element.iter(tag(DAV, "href")):
        text = unquote((href.text or "").strip())
        if text.lower().startswith("mailto:"):
            found.append(text[len("mailto:") :].strip().lower())
    return found


def check_principal(principal: Response, email: str, *, service_account_signed_in: bool) -> None:
    """Raise `FolderMissing` (folder ``principal``) unless ``principal`` is the rep's.

    ``service_account_signed_in``: the request carried the service account's sign-in (a
    server that never asked for one has no idea who "the current user" is)."""
    addresses = addresses_of(principal)
    if addresses and email.lower() not in addresses:
        raise _not_the_reps(
            f"the principal the server gave for {email} at {principal.href} belongs to "
            f"{', '.join(addresses)}"
        )
    own = principal.hrefs(CURRENT_PRINCIPAL)
    if service_account_signed_in and own and own[0] == principal.href:
        raise _not_the_reps(
            f"asked for the principal of {email}, the server answered with the service "
            f"account's own principal ({principal.href})"
        )


def check_inside(folder: str, home: str, email: str, what: str) -> None:
    """Raise `FolderMissing` unless ``folder`` lies inside the rep's ``home``."""
    if not folder.startswith(home):
        raise _not_the_reps(
            f"the {what} the server named for {email} ({folder}) is outside the rep's home {home}",
            folder="calendar" if what == "calendar" else "contacts",
        )


def _not_the_reps(found: str, folder: str = "principal") -> FolderMissing:
    return FolderMissing(
        f"{found}; crmsync writes nothing there, so a rep's items never land in someone "
        "else's folders",
        "Check the principal path in the org settings; on servers that redirect a "
        "delegate to its own folders (Cyrus), give the service account access to the "
        "rep's folders, or use per-rep sign-in.",
        folder=folder,
    )
