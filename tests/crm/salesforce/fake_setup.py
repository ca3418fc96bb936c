"""The fake org's Tooling API field creation and field-level security.

``POST tooling/sobjects/CustomField`` (FullName ``Object.Name__c``, an event field on
Activity; Metadata with type, length, label, externalId, unique) answers 201 with the
field's id, or 400 ``DUPLICATE_DEVELOPER_NAME`` for a field the object already has:
https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm
A field created this way is hidden (describe leaves it out) until a FieldPermissions
record with PermissionsRead, in a permission set assigned to a user, grants it:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
Only Text fields are modelled.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from tests.crm.salesforce import fake_schema as schema

if TYPE_CHECKING:
    from tests.crm.salesforce.fake_org import FakeOrg

Answer = tuple[int, Any]
# Where Salesforce defines a custom field, and the objects that then carry it.
PARENTS = {"Contact": ("Contact",), "Account": ("Account",), "Activity": ("Event",)}
_field_ids = itertools.count(1)


def _refusal(code: str, message: str) -> Answer:
    return 400, [{"errorCode": code, "message": message, "fields": []}]


def create_custom_field(org: FakeOrg, body: Any) -> Answer:
    body = body if isinstance(body, dict) else {}
    full_name, metadata = body.get("FullName"), body.get("Metadata")
    if not isinstance(full_name, str) or not isinstance(metadata, dict):
        return _refusal("FIELD_INTEGRITY_EXCEPTION", "FullName and Metadata are required")
    parent, _, name = full_name.partition(".")
    if parent not in PARENTS:
        return _refusal("INVALID_FIELD", f"Cannot find the object {parent!r}")
    if not name.endswith("__c") or not name.removesuffix("__c").replace("_", "").isalnum():
        return _refusal("INVALID_FIELD", f"invalid custom field name {name!r}")
    length = metadata.get("length")
    if metadata.get("type") != "Text" or not isinstance(length, int) or not 0 < length <= 255:
        return _refusal("FIELD_INTEGRITY_EXCEPTION", "a Text field needs a length of 1 to 255")
    if not metadata.get("label"):
        return _refusal("REQUIRED_FIELD_MISSING", "Required fields are missing: [Label]")
    with org.lock:
        owners = PARENTS[parent]
        if any(name in org.schema[o] for o in owners):
            return _refusal(
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {name.removesuffix('__c')} on {parent}.",
            )
        unique = bool(metadata.get("unique"))
        spec = schema.Spec(
            "string",
            length,
            custom=True,
            external_id=bool(metadata.get("externalId")),
            unique=unique,
        )
        for sobject in owners:
            org.schema[sobject][name] = spec
            org.hidden_fields.add((sobject, name))
            for row in org.rows[sobject].values():
                row.setdefault(name, None)
    return 201, {"id": f"00N{next(_field_ids):015d}", "success": True, "errors": [], "warnings": []}


def visible_fields(org: FakeOrg, sobject: str) -> dict[str, schema.Spec]:
    """The object's fields a describe shows: hidden ones only once a permission set that
    someone holds grants reading them."""
    with org.lock:
        assigned = {
            a["PermissionSetId"]
            for a in org.rows["PermissionSetAssignment"].values()
            if not a["IsDeleted"]
        }
        granted = {
            p["Field"]
            for p in org.rows["FieldPermissions"].values()
            if not p["IsDeleted"] and p["PermissionsRead"] and p["ParentId"] in assigned
        }
        return {
            name: spec
            for name, spec in org.schema[sobject].items()
            if (sobject, name) not in org.hidden_fields or f"{sobject}.{name}" in granted
        }
