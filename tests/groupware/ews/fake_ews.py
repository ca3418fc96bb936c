"""A fake Exchange EWS endpoint for tests, built from Microsoft's documented payloads.

A threaded ``http.server`` on 127.0.0.1 answering the SOAP requests the official client
library (exchangelib) really sends, with the response shapes of the EWS reference on
learn.microsoft.com (each handler names its page). Items live in memory as the XML the
client sent, with an ItemId and a ChangeKey that changes on every write. Like real EWS it
rejects a request without the ExchangeImpersonation header, a stale ChangeKey on
UpdateItem (ErrorIrresolvableConflict) and an unknown SyncState (ErrorInvalidSyncStateData),
and it can be told to answer ErrorServerBusy with BackOffMilliseconds, HTTP 401 or 503.
Only what crmsync uses is implemented; anything else answers ErrorInvalidRequest. This module
is the wire (SOAP in, SOAP out); the server's state is `fake_exchange.FakeExchange`.
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lxml import etree

from tests.groupware.ews.fake_exchange import (
    NSMAP,
    E,
    EwsError,
    FakeExchange,
    Recorded,
    S,
    Stored,
    m,
    normalized,
    t,
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        expected = "Basic " + base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._send(401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
            return
        envelope = etree.fromstring(body)
        soap_body = envelope.find(f"{{{S}}}Body")
        operation = etree.QName(soap_body[0]).localname
        header = envelope.find(f"{{{S}}}Header")
        impersonated = None
        if header is not None:
            sid = header.find(f"{t('ExchangeImpersonation')}/{t('ConnectingSID')}")
            if sid is not None:
                impersonated = (sid.findtext(t("PrimarySmtpAddress")) or "").lower() or None
        with fake.lock:
            fake.requests.append(
                Recorded(operation, dict(self.headers.items()), soap_body[0], impersonated)
            )
            fault = next((f for f in fake.faults if f.operation in (None, operation)), None)
            if fault is not None:
                fake.faults.remove(fault)
        if fault is not None and fault.http_status:
            self._send(fault.http_status, b"unavailable")
            return
        if fault is not None:
            self._fault(fault.code, fault.back_off_ms)
            return
        # ExchangeImpersonation header (learn.microsoft.com/en-us/exchange/client-developer/
        # web-service-reference/exchangeimpersonation): crmsync must always act as the rep.
        if impersonated is None:
            self._fault(
                "ErrorImpersonateUserDenied",
                None,
                "The account does not have permission to impersonate the requested user.",
            )
            return
        if impersonated not in fake.mailboxes:
            self._fault(
                "ErrorNonExistentMailbox",
                None,
                "The SMTP address has no mailbox associated with it.",
            )
            return
        if impersonated in fake.denied:
            self._fault(
                "ErrorImpersonateUserDenied",
                None,
                "The account does not have permission to impersonate the requested user.",
            )
            return
        handler = getattr(self, "op_" + operation, None)
        with fake.lock:
            if handler is None:
                messages = [_error("ErrorInvalidRequest", f"the fake does not serve {operation}")]
            else:
                messages = handler(fake, soap_body[0], impersonated)
        self._respond(operation, messages)

    # ---------------------------------------------------------------- wire helpers

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _envelope(self) -> tuple[Any, Any]:
        env = etree.Element(f"{{{S}}}Envelope", nsmap=NSMAP)
        header = etree.SubElement(env, f"{{{S}}}Header")
        major, minor, build, rev = self.server.fake.version
        # ServerVersionInfo (learn.microsoft.com/en-us/exchange/client-developer/
        # web-service-reference/serverversioninfo)
        etree.SubElement(
            header,
            t("ServerVersionInfo"),
            MajorVersion=str(major),
            MinorVersion=str(minor),
            MajorBuildNumber=str(build),
            MinorBuildNumber=str(rev),
            Version="V2017_07_11",
        )
        return env, etree.SubElement(env, f"{{{S}}}Body")

    def _fault(self, code: str, back_off_ms: int | None, text: str = "") -> None:
        """A SOAP fault with an EWS ResponseCode; ErrorServerBusy carries BackOffMilliseconds
        (EWS throttling: learn.microsoft.com/en-us/exchange/client-developer/
        exchange-web-services/ews-throttling-in-exchange)."""
        env, body = self._envelope()
        fault = etree.SubElement(body, f"{{{S}}}Fault")
        etree.SubElement(fault, "faultcode").text = "a:" + code
        etree.SubElement(fault, "faultstring").text = text or code
        detail = etree.SubElement(fault, "detail")
        etree.SubElement(detail, f"{{{E}}}ResponseCode").text = code
        etree.SubElement(detail, f"{{{E}}}Message").text = text or code
        if back_off_ms is not None:
            xml = etree.SubElement(detail, t("MessageXml"))
            value = etree.SubElement(xml, t("Value"), Name="BackOffMilliseconds")
            value.text = str(back_off_ms)
        self._send(500, etree.tostring(env, xml_declaration=True, encoding="utf-8"))

    def _respond(self, operation: str, messages: list[Any]) -> None:
        env, body = self._envelope()
        response = etree.SubElement(body, m(operation + "Response"))
        container = etree.SubElement(response, m("ResponseMessages"))
        for message in messages:
            message.tag = m(operation + "ResponseMessage")
            container.append(message)
        self._send(200, etree.tostring(env, xml_declaration=True, encoding="utf-8"))

    # ---------------------------------------------------------------- operations

    def op_GetFolder(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """GetFolder operation (learn.microsoft.com/en-us/exchange/client-developer/
        web-service-reference/getfolder-operation)."""
        out = []
        for fid in req.find(m("FolderIds")):
            try:
                folder_id = fake.folder_id(fid, mailbox)
            except EwsError as exc:
                out.append(_error(exc.code, exc.text))
                continue
            msg = _ok()
            etree.SubElement(msg, m("Folders")).append(fake.folder_xml(folder_id))
            out.append(msg)
        return out

    def op_FindFolder(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """FindFolder operation, shallow traversal (learn.microsoft.com/en-us/exchange/
        client-developer/web-service-reference/findfolder-operation)."""
        out = []
        for fid in req.find(m("ParentFolderIds")):
            parent = fake.folder_id(fid, mailbox)
            children = [f for f, v in fake.folders.items() if v["parent"] == parent]
            msg = _ok()
            root = etree.SubElement(
                msg,
                m("RootFolder"),
                TotalItemsInView=str(len(children)),
                IncludesLastItemInRange="true",
            )
            folders = etree.SubElement(root, t("Folders"))
            for child in children:
                folders.append(fake.folder_xml(child))
            out.append(msg)
        return out

    def op_CreateFolder(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """CreateFolder operation (learn.microsoft.com/en-us/exchange/client-developer/
        web-service-reference/createfolder-operation)."""
        parent = fake.folder_id(req.find(m("ParentFolderId"))[0], mailbox)
        out = []
        for new in req.find(m("Folders")):
            folder_id = f"folder{next(fake.ids)}@{mailbox}"
            fake.folders[folder_id] = {
                "tag": etree.QName(new).localname,
                "name": new.findtext(t("DisplayName")),
                "class": new.findtext(t("FolderClass")) or "IPF.Contact",
                "parent": parent,
                "mailbox": mailbox,
            }
            msg = _ok()
            folders = etree.SubElement(msg, m("Folders"))
            el = etree.SubElement(folders, new.tag)
            etree.SubElement(el, t("FolderId"), Id=folder_id, ChangeKey="fck")
            out.append(msg)
        return out

    def op_CreateItem(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """CreateItem operation (learn.microsoft.com/en-us/exchange/client-developer/
        web-service-reference/createitem-operation)."""
        folder = fake.folder_id(req.find(m("SavedItemFolderId"))[0], mailbox)
        out = []
        for new in req.find(m("Items")):
            stored = Stored(fake.new_id(), folder, normalized(new), "")
            fake.items[stored.id] = stored
            fake.touch(stored)
            msg = _ok()
            etree.SubElement(msg, m("Items")).append(fake.item_xml(stored, shape_id_only=True))
            out.append(msg)
        return out

    def op_GetItem(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """GetItem operation (learn.microsoft.com/en-us/exchange/client-developer/
        web-service-reference/getitem-operation); occurrences by OccurrenceItemId."""
        out = []
        for id_elem in req.find(m("ItemIds")):
            try:
                stored, occurrence = fake.resolve(id_elem)
                el = fake.synthesized(*occurrence) if occurrence else fake.item_xml(stored)  # type: ignore[arg-type]
            except EwsError as exc:
                out.append(_error(exc.code, exc.text))
                continue
            msg = _ok()
            etree.SubElement(msg, m("Items")).append(el)
            out.append(msg)
        return out

    def op_UpdateItem(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """UpdateItem operation: a stale ChangeKey fails with ErrorIrresolvableConflict
        unless ConflictResolution is AlwaysOverwrite (learn.microsoft.com/en-us/exchange/
        client-developer/web-service-reference/updateitem-operation)."""
        resolution = req.get("ConflictResolution")
        out = []
        for change in req.find(m("ItemChanges")):
            id_elem = change[0]
            try:
                stored, occurrence = fake.resolve(id_elem)
                if occurrence is not None:
                    master, original = fake.occurrence_of(*occurrence)
                    stored = fake.occurrence_item(master, original)
                    # An occurrence keeps its ItemId when it becomes an exception.
                    stored.id = "occ~{}~{}".format(*occurrence)
                    fake.items[stored.id] = stored
                    master.modified[original] = stored.id
                elif (
                    id_elem.get("ChangeKey")
                    and id_elem.get("ChangeKey") != stored.changekey  # type: ignore[union-attr]
                    and resolution != "AlwaysOverwrite"
                ):
                    raise EwsError(
                        "ErrorIrresolvableConflict",
                        "The send or update operation could not be performed because the "
                        "change key passed in the request does not match the current change "
                        "key for the item.",
                    )
                assert stored is not None
                fake.apply_updates(stored, change.find(t("Updates")))
                fake.touch(stored)
                if stored.master:
                    fake.touch(fake.items[stored.master])
            except EwsError as exc:
                out.append(_error(exc.code, exc.text))
                continue
            msg = _ok()
            etree.SubElement(msg, m("Items")).append(fake.item_xml(stored, shape_id_only=True))
            conflicts = etree.SubElement(msg, m("ConflictResults"))
            etree.SubElement(conflicts, t("Count")).text = "0"
            out.append(msg)
        return out

    def op_DeleteItem(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """DeleteItem operation; deleting an occurrence adds a DeletedOccurrence to its
        series (learn.microsoft.com/en-us/exchange/client-developer/
        web-service-reference/deleteitem-operation)."""
        out = []
        for id_elem in req.find(m("ItemIds")):
            try:
                stored, occurrence = fake.resolve(id_elem)
                if occurrence is not None:
                    master, original = fake.occurrence_of(*occurrence)
                    exc_id = master.modified.pop(original, None)
                    if exc_id:
                        fake.items.pop(exc_id, None)
                    master.deleted.add(original)
                    fake.touch(master)
                else:
                    assert stored is not None
                    del fake.items[stored.id]
                    for exc_id in stored.modified.values():
                        fake.items.pop(exc_id, None)
                    seq = next(fake.seq)
                    fake.last_seq = seq
                    fake.log.append((seq, stored.folder, stored.id))
            except EwsError as exc:
                out.append(_error(exc.code, exc.text))
                continue
            out.append(_ok())
        return out

    def op_FindItem(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """FindItem with an IsEqualTo restriction on an extended property (FindItem operation:
        learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/finditem-operation)."""
        folder = fake.folder_id(req.find(m("ParentFolderIds"))[0], mailbox)
        wanted = None
        restriction = req.find(m("Restriction"))
        if restriction is not None:
            equal = restriction.find(f".//{t('IsEqualTo')}")
            uri = equal.find(t("ExtendedFieldURI"))
            constant = equal.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
            wanted = (dict(uri.attrib), constant.get("Value"))
        hits = []
        for stored in fake.items.values():
            if stored.folder != folder or stored.master:
                continue
            if wanted is not None:
                props = stored.element.findall(t("ExtendedProperty"))
                if not any(
                    dict(p.find(t("ExtendedFieldURI")).attrib) == wanted[0]
                    and p.findtext(t("Value")) == wanted[1]
                    for p in props
                ):
                    continue
            hits.append(stored)
        msg = _ok()
        root = etree.SubElement(
            msg, m("RootFolder"), TotalItemsInView=str(len(hits)), IncludesLastItemInRange="true"
        )
        items = etree.SubElement(root, t("Items"))
        for stored in hits:
            items.append(fake.item_xml(stored, shape_id_only=True))
        return [msg]

    def op_SyncFolderItems(self, fake: FakeExchange, req: Any, mailbox: str) -> list[Any]:
        """SyncFolderItems operation: Create/Update/Delete changes since the SyncState, at
        most MaxChangesReturned, with IncludesLastItemInRange (learn.microsoft.com/en-us/
        exchange/client-developer/web-service-reference/syncfolderitems-operation)."""
        folder = fake.folder_id(req.find(m("SyncFolderId"))[0], mailbox)
        state_text = req.findtext(m("SyncState"))
        since = 0
        if state_text:
            try:
                kind, state_folder, seq = base64.b64decode(state_text).decode().split("|")
                assert kind == "fakestate" and state_folder == folder
                since = int(seq)
            except Exception:
                # Error responses still carry an empty SyncState and IncludesLastItemInRange.
                msg = _error(
                    "ErrorInvalidSyncStateData",
                    "Synchronization state data is corrupt or otherwise invalid.",
                )
                etree.SubElement(msg, m("SyncState"))
                etree.SubElement(msg, m("IncludesLastItemInRange")).text = "true"
                return [msg]
        limit = int(req.findtext(m("MaxChangesReturned")) or 512)
        latest: dict[str, int] = {}
        first_seen: dict[str, int] = {}
        for seq, f, item_id in fake.log:
            if f == folder and seq > since:
                latest[item_id] = seq
                first_seen.setdefault(item_id, seq)
        created_before = {i for s, f, i in fake.log if f == folder and s <= since}
        ordered = sorted(latest, key=latest.__getitem__)
        page, last = ordered[:limit], len(ordered) <= limit
        new_since = latest[page[-1]] if page and not last else max(since, fake.last_seq)
        msg = _ok()
        etree.SubElement(msg, m("SyncState")).text = base64.b64encode(
            f"fakestate|{folder}|{new_since}".encode()
        ).decode()
        etree.SubElement(msg, m("IncludesLastItemInRange")).text = "true" if last else "false"
        changes = etree.SubElement(msg, m("Changes"))
        for item_id in page:
            stored = fake.items.get(item_id)
            if stored is None:
                if item_id in created_before:
                    d = etree.SubElement(changes, t("Delete"))
                    etree.SubElement(d, t("ItemId"), Id=item_id)
                continue
            kind = "Update" if item_id in created_before else "Create"
            etree.SubElement(changes, t(kind)).append(fake.item_xml(stored, shape_id_only=True))
        return [msg]


def _ok() -> Any:
    msg = etree.Element(m("Message"), ResponseClass="Success")
    etree.SubElement(msg, m("ResponseCode")).text = "NoError"
    return msg


def _error(code: str, text: str = "") -> Any:
    msg = etree.Element(m("Message"), ResponseClass="Error")
    etree.SubElement(msg, m("MessageText")).text = text or code
    etree.SubElement(msg, m("ResponseCode")).text = code
    etree.SubElement(msg, m("DescriptiveLinkKey")).text = "0"
    return msg


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeExchange


class FakeEwsServer:
    """Runs a `FakeExchange` at ``url`` until `stop`."""

    def __init__(self, username: str, password: str, mailboxes: set[str]) -> None:
        self.fake = FakeExchange(username, password, mailboxes)
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self.fake
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/EWS/Exchange.asmx"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
