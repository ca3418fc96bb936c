"""The objects and fields of the fake org, with the flags ``describe`` reports.

Field facts (types, lengths, createable / updateable) follow the Object Reference pages
for Contact, Account (person accounts), Lead, Event, User and Profile
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/)
and the recorded Event describe summarised in the team's research notes: IsRecurrence2
and its siblings are derived; Recurrence2PatternText can be set on create only.
Describe payload: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spec:
    type: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False

    def describe(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": name,
            "type": self.type,
            "length": self.length,
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.custom,
            "externalId": self.external_id,
            "unique": self.unique,
            "nillable": True,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": False}
                for v in self.picklist
            ],
        }


READ_ONLY = {"createable": False, "updateable": False}
CREATE_ONLY = {"createable": True, "updateable": False}


def _system() -> dict[str, Spec]:
    return {
        "Id": Spec("id", 18, **READ_ONLY),
        "IsDeleted": Spec("boolean", **READ_ONLY),
        "SystemModstamp": Spec("datetime", **READ_ONLY),
        "CreatedDate": Spec("datetime", **READ_ONLY),
        "LastModifiedDate": Spec("datetime", **READ_ONLY),
    }


def _address(prefix: str) -> dict[str, Spec]:
    return {
        f"{prefix}Street": Spec("textarea", 255),
        f"{prefix}City": Spec("string", 40),
        f"{prefix}State": Spec("string", 80),
        f"{prefix}PostalCode": Spec("string", 20),
        f"{prefix}Country": Spec("string", 80),
    }


def contact_fields(person_accounts: bool) -> dict[str, Spec]:
    fields = {
        **_system(),
        "OwnerId": Spec("reference", 18),
        "AccountId": Spec("reference", 18),
        "FirstName": Spec("string", 40),
        "LastName": Spec("string", 80),
        "Salutation": Spec("picklist", 40, picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        "Title": Spec("string", 128),
        "Department": Spec("string", 80),
        "Email": Spec("email", 80),
        "Phone": Spec("phone", 40),
        "MobilePhone": Spec("phone", 40),
        "HomePhone": Spec("phone", 40),
        "OtherPhone": Spec("phone", 40),
        "Fax": Spec("phone", 40),
        **_address("Mailing"),
        **_address("Other"),
        "Birthdate": Spec("date"),
        "Description": Spec("textarea", 32000),
    }
    if person_accounts:
        fields["IsPersonAccount"] = Spec("boolean", **READ_ONLY)
    return fields


def account_fields(person_accounts: bool) -> dict[str, Spec]:
    fields = {
        **_system(),
        "OwnerId": Spec("reference", 18),
        "Name": Spec("string", 255),
        "Phone": Spec("phone", 40),
        "Fax": Spec("phone", 40),
        "Description": Spec("textarea", 32000),
    }
    if person_accounts:
        fields |= {
            "IsPersonAccount": Spec("boolean", **READ_ONLY),
            "PersonContactId": Spec("reference", 18, **READ_ONLY),
            "RecordTypeId": Spec("reference", 18),
            "FirstName": Spec("string", 40),
            "LastName": Spec("string", 80),
            "Salutation": Spec("picklist", 40, picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
            "PersonTitle": Spec("string", 80),
            "PersonDepartment": Spec("string", 80),
            "PersonEmail": Spec("email", 80),
            "PersonMobilePhone": Spec("phone", 40),
            "PersonHomePhone": Spec("phone", 40),
            "PersonOtherPhone": Spec("phone", 40),
            "PersonBirthdate": Spec("date"),
            **_address("PersonMailing"),
            **_address("PersonOther"),
        }
    return fields


def lead_fields() -> dict[str, Spec]:
    return {
        **_system(),
        "OwnerId": Spec("reference", 18),
        "FirstName": Spec("string", 40),
        "LastName": Spec("string", 80),
        "Company": Spec("string", 255),
        "Email": Spec("email", 80),
        "IsConverted": Spec("boolean", **READ_ONLY),
    }


def event_fields(shared_activities: bool) -> dict[str, Spec]:
    fields = {
        **_system(),
        "OwnerId": Spec("reference", 18),
        "Subject": Spec("combobox", 255),
        "Location": Spec("string", 255),
        "Description": Spec("textarea", 32000),
        "StartDateTime": Spec("datetime"),
        "EndDateTime": Spec("datetime"),
        "ActivityDate": Spec("date"),
        "ActivityDateTime": Spec("datetime"),
        "DurationInMinutes": Spec("int"),
        "IsAllDayEvent": Spec("boolean"),
        "IsPrivate": Spec("boolean"),
        "ShowAs": Spec("picklist", 40, picklist=("Busy", "OutOfOffice", "Free"), restricted=True),
        "WhoId": Spec("reference", 18),
        "WhatId": Spec("reference", 18),
        "IsChild": Spec("boolean", **READ_ONLY),
        "IsGroupEvent": Spec("boolean", **READ_ONLY),
        "IsRecurrence": Spec("boolean", **CREATE_ONLY),
        "RecurrenceActivityId": Spec("reference", 18, **READ_ONLY),
        "IsRecurrence2": Spec("boolean", **READ_ONLY),
        "IsRecurrence2Exception": Spec("boolean", **READ_ONLY),
        "IsRecurrence2Exclusion": Spec("boolean", **READ_ONLY),
        "Recurrence2PatternText": Spec("textarea", 512, **CREATE_ONLY),
        "Recurrence2PatternStartDate": Spec("datetime", **READ_ONLY),
        "Recurrence2PatternTimeZone": Spec("string", 255, **READ_ONLY),
        "Recurrence2PatternVersion": Spec("picklist", 40, **READ_ONLY),
    }
    if shared_activities:
        fields["EventWhoIds"] = Spec("junctionidlist")
    return fields


def user_fields() -> dict[str, Spec]:
    return {
        **_system(),
        "Username": Spec("string", 80),
        "Email": Spec("email", 128),
        "Name": Spec("string", 121, **READ_ONLY),
        "ProfileId": Spec("reference", 18),
        "TimeZoneSidKey": Spec("picklist", 40),
        "IsActive": Spec("boolean"),
        "UserType": Spec("picklist", 40, **READ_ONLY),
    }


def profile_fields() -> dict[str, Spec]:
    return {**_system(), "Name": Spec("string", 255)}


def marker_spec(unique: bool) -> Spec:
    return Spec("string", 255, custom=True, external_id=unique, unique=unique)


def permission_set_fields() -> dict[str, Spec]:
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionset.htm
    return {**_system(), "Name": Spec("string", 80, unique=True), "Label": Spec("string", 80)}


def field_permissions_fields() -> dict[str, Spec]:
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
    return {
        **_system(),
        "ParentId": Spec("reference", 18, updateable=False),
        "SobjectType": Spec("string", 40, updateable=False),
        "Field": Spec("string", 80, updateable=False),
        "PermissionsRead": Spec("boolean"),
        "PermissionsEdit": Spec("boolean"),
    }


def permission_set_assignment_fields() -> dict[str, Spec]:
    # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm
    return {
        **_system(),
        "AssigneeId": Spec("reference", 18, updateable=False),
        "PermissionSetId": Spec("reference", 18, updateable=False),
    }
