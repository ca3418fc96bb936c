"""Object metadata from ``/sobjects/{SObject}/describe``, read once per connection.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
Field mappings check custom fields (``Foo__c``) against it: whether the field exists, its
type, and whether the integration user may create or update it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.errors import UnexpectedAnswer
from crmsync.domain.contact_fields import FieldType


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    label: str = ""
    length: int = 0
    createable: bool = False
    updateable: bool = False
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    picklist_values: tuple[str, ...] = ()

    @property
    def domain_type(self) -> FieldType | None:
        """The contact field type this Salesforce type can hold, or ``None``."""
        return _DOMAIN_TYPES.get(self.type)


_DOMAIN_TYPES = {
    "string": FieldType.TEXT,
    "textarea": FieldType.TEXT,
    "picklist": FieldType.TEXT,
    "combobox": FieldType.TEXT,
    "url": FieldType.TEXT,
    "phone": FieldType.PHONE,
    "email": FieldType.EMAIL,
    "date": FieldType.DATE,
    "boolean": FieldType.FLAG,
}


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    fields: dict[str, FieldInfo]
    createable: bool = False
    updateable: bool = False
    deletable: bool = False

    def field(self, name: str) -> FieldInfo | None:
        return self.fields.get(name)


def _parse(body: object) -> ObjectInfo:
    if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
        raise UnexpectedAnswer("a describe answer without fields", "")
    fields = {}
    for raw in body["fields"]:
        if not isinstance(raw, dict) or "name" not in raw:
            continue
        fields[str(raw["name"])] = FieldInfo(
            name=str(raw["name"]),
            type=str(raw.get("type", "")),
            label=str(raw.get("label", "")),
            length=int(raw.get("length") or 0),
            createable=bool(raw.get("createable")),
            updateable=bool(raw.get("updateable")),
            custom=bool(raw.get("custom")),
            external_id=bool(raw.get("externalId")),
            unique=bool(raw.get("unique")),
            picklist_values=tuple(
                str(p.get("value"))
                for p in raw.get("picklistValues") or ()
                if isinstance(p, dict) and p.get("active", True)
            ),
        )
    return ObjectInfo(
        str(body.get("name", "")),
        fields,
        bool(body.get("createable")),
        bool(body.get("updateable")),
        bool(body.get("deletable")),
    )


class DescribeCache:
    """Describes of the objects asked for, fetched once each; `forget` drops them (after
    an admin adds a field)."""

    def __init__(self, conn: SalesforceConnection) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._objects: dict[str, ObjectInfo | None] = {}

    def get(self, sobject: str) -> ObjectInfo | None:
        """The object's describe, or ``None`` when the org has no such object (a person
        account field on an org without person accounts, say)."""
        with self._lock:
            if sobject in self._objects:
                return self._objects[sobject]
        answer = self.conn.get(
            f"sobjects/{sobject}/describe", accept=(404,), what=f"the describe of {sobject}"
        )
        info = None if answer.status == 404 else _parse(answer.body)
        with self._lock:
            self._objects[sobject] = info
        return info

    def forget(self) -> None:
        with self._lock:
            self._objects.clear()
