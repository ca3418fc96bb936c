"""WebDAV XML: the request bodies the backend sends and the 207 Multi-Status it reads.

Only what the backend uses: PROPFIND, sync-collection (RFC 6578), calendar-multiget
(RFC 4791) and addressbook-multiget (RFC 6352), extended MKCOL (RFC 5689), MKCALENDAR.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from crmsync.groupware.dav.connection import canonical_path

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
# Apple's CalendarServer namespace: getctag, the collection's change tag.
CALENDARSERVER = "http://calendarserver.org/ns/"
_PREFIXES = {DAV: "d", CALDAV: "c", CARDDAV: "a", CALENDARSERVER: "cs"}
_MULTISTATUS = f"{{{DAV}}}multistatus"
_RESPONSE = f"{{{DAV}}}response"
_HREF = f"{{{DAV}}}href"
_STATUS = f"{{{DAV}}}status"
_PROPSTAT = f"{{{DAV}}}propstat"
_PROP = f"{{{DAV}}}prop"
_SYNC_TOKEN = f"{{{DAV}}}sync-token"


class MultistatusError(ValueError):
    """The server's XML could not be read as a Multi-Status."""


class ResponseLimitPassed(MultistatusError):
    """One ``<response>`` (or what is around it) is larger than the reader holds."""


def tag(namespace: str, name: str) -> str:
    """The ElementTree name of ``name`` in ``namespace`` (``{DAV:}getetag``)."""
    return f"{{{namespace}}}{name}"


def _qname(clark: str) -> str:
    namespace, _, name = clark[1:].partition("}")
    return f"{_PREFIXES[namespace]}:{name}"


def _document(root: str, inner: str) -> str:
    namespaces = " ".join(f'xmlns:{p}="{ns}"' for ns, p in _PREFIXES.items())
    return f'<?xml version="1.0" encoding="utf-8"?><{root} {namespaces}>{inner}</{root}>'


def propfind_body(*props: str) -> str:
    """A PROPFIND asking for ``props`` (Clark names such as ``{DAV:}getetag``)."""
    inner = "".join(f"<{_qname(p)}/>" for p in props)
    return _document("d:propfind", f"<d:prop>{inner}</d:prop>")


def sync_collection_body(token: str) -> str:
    """A sync-collection REPORT (sync-level 1) asking for etags since ``token``."""
    return _document(
        "d:sync-collection",
        f"<d:sync-token>{escape(token)}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop>",
    )


def multiget_body(report: str, data_prop: str, hrefs: list[str]) -> str:
    """A calendar-multiget / addressbook-multiget REPORT for ``hrefs`` (paths)."""
    refs = "".join(f"<d:href>{escape(h)}</d:href>" for h in hrefs)
    return _document(_qname(report), f"<d:prop><d:getetag/><{_qname(data_prop)}/></d:prop>{refs}")


def mkcol_addressbook_body(displayname: str) -> str:
    """An extended MKCOL creating an address book called ``displayname``."""
    return _document(
        "d:mkcol",
        "<d:set><d:prop><d:resourcetype><d:collection/><a:addressbook/></d:resourcetype>"
        f"<d:displayname>{escape(displayname)}</d:displayname></d:prop></d:set>",
    )


def proppatch_addressbook_body(displayname: str) -> str:
    """A PROPPATCH turning a plain collection into an address book (for plain-MKCOL servers)."""
    return _document(
        "d:propertyupdate",
        "<d:set><d:prop><d:resourcetype><d:collection/><a:addressbook/></d:resourcetype>"
        f"<d:displayname>{escape(displayname)}</d:displayname></d:prop></d:set>",
    )


def mkcalendar_body(displayname: str) -> str:
    """A MKCALENDAR body for an event calendar called ``displayname``."""
    return _document(
        "c:mkcalendar",
        f"<d:set><d:prop><d:displayname>{escape(displayname)}</d:displayname>"
        '<c:supported-calendar-component-set><c:comp name="VEVENT"/>'
        "</c:supported-calendar-component-set></d:prop></d:set>",
    )


@dataclass
class Response:
    """One ``<response>``: its path, its overall status if any, and the found properties.

    ``props`` maps Clark names to elements for properties reported with status 200.
    """

    href: str
    status: int | None = None
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        if element is None:
            return None
        return (element.text or "").strip()

    def hrefs(self, name: str) -> list[str]:
        """The ``<href>`` values inside property ``name``, as canonical paths."""
        element = self.props.get(name)
        if element is None:
            return []
        return [
            canonical_path((h.text or "").strip())
            for h in element.iter(tag(DAV, "href"))
            if (h.text or "").strip()
        ]

    def has_type(self, name: str) -> bool:
        """Whether ``resourcetype`` holds element ``name`` (a Clark name)."""
        element = self.props.get(tag(DAV, "resourcetype"))
        return element is not None and element.find(name) is not None


@dataclass
class Multistatus:
    responses: list[Response]
    sync_token: str | None = None


def _status_code(text: str | None) -> int | None:
    parts = (text or "").split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def parse_multistatus(content: bytes) -> Multistatus:
    """Read a 207 body; raises `MultistatusError` when it is not well-formed XML."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise MultistatusError(f"the server sent unreadable XML: {exc}") from exc
    if root.tag != _MULTISTATUS:
        raise MultistatusError(f"expected a DAV multistatus, got {root.tag}")
    responses = [_response(element) for element in root.findall(_RESPONSE)]
    token = root.findtext(tag(DAV, "sync-token"))
    return Multistatus(responses, token.strip() if token is not None else None)


def read_multistatus(
    chunks: Iterable[bytes], each: Callable[[Response], None], response_limit: int
) -> str | None:
    """Read a 207 body ``<response>`` by ``<response>`` as its ``chunks`` arrive: ``each``
    gets every one as soon as it is read, and its elements are dropped after; returns the
    sync-token, if any.

    For long listings (a sync-collection of every item): the whole tree of 50,000
    responses took several times the body's size at once. Raises `MultistatusError` as
    `parse_multistatus` does, and `ResponseLimitPassed` once more than ``response_limit``
    bytes arrived without a ``<response>`` ending, so a huge one is never held (``each``
    may have been called for the responses before either error).
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    depth = 0
    token: str | None = None
    # Bytes fed since a <response> last ended (counted per chunk: what the parser holds).
    unended = 0
    try:
        for chunk in chunks:
            parser.feed(chunk)
            unended += len(chunk)
            for event, element in parser.read_events():
                if event == "start":
                    depth += 1
                    if root is None:
                        root = element
                        if root.tag != _MULTISTATUS:
                            raise MultistatusError(f"expected a DAV multistatus, got {root.tag}")
                    continue
                depth -= 1
                if depth != 1 or root is None:
                    continue
                if element.tag == _RESPONSE:
                    each(_response(element))
                    root.remove(element)
                    unended = 0
                elif element.tag == _SYNC_TOKEN:
                    token = (element.text or "").strip()
            if unended > response_limit:
                raise ResponseLimitPassed(
                    f"more than {response_limit} bytes of the listing arrived without "
                    "a <response> ending"
                )
        parser.close()
    except ET.ParseError as exc:
        raise MultistatusError(f"the server sent unreadable XML: {exc}") from exc
    if root is None:
        raise MultistatusError("the server sent an empty body")
    return token


def _response(element: ET.Element) -> Response:
    href = element.findtext(_HREF, "").strip()
    response = Response(canonical_path(href), _status_code(element.findtext(_STATUS)))
    for propstat in element.findall(_PROPSTAT):
        if _status_code(propstat.findtext(_STATUS)) != 200:
            continue
        prop = propstat.find(_PROP)
        for child in prop if prop is not None else ():
            response.props[child.tag] = child
    return response


def error_conditions(content: bytes) -> list[str]:
    """The precondition names in a ``<DAV:error>`` body (e.g. ``valid-sync-token``)."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return []
    return [child.tag.rpartition("}")[2] for child in root]
