"""The configuration form: every value kept and every problem beside its field, delete
after a confirmation, the spec's words, members picked from the org's users and profiles,
and the reps a configuration covers."""

from __future__ import annotations

import re

from crmsync.domain.settings import SyncConfig
from tests.admin.web.conftest import Console
from tests.admin.web.forms import encoded, form_fields
from tests.admin.web.test_pages import config_form


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'id="error-{field}"[^>]*>([^<]*)<', page)
    assert found, f"no problem shown beside {field}"
    return found[1]


def test_a_form_with_problems_keeps_every_value_and_shows_each_problem_by_its_field(
    console: Console,
) -> None:
    console.service.crm.create_user("ann@example.com", "Ann")
    csrf = console.sign_in("manager")
    form = config_form(
        csrf,
        users="ghost@example.com",
        filters="mailing_address.country sounds_like DE",
        events_window_days="500",
        contacts_direction="crm_to_mail",
        contacts_conflict="mail_wins",
        contacts_ownership="all",
        contacts_propagate_deletions="on",
        events_sync_private="on",
        events_auto_relate="on",
        events_selection="user_selected",
        description="Germany and Austria",
    )
    del form["events_sync_series"]  # unticked: stays unticked
    refused = console.client.post("/configurations", data=form)
    assert refused.status_code == 422
    assert "ghost@example.com" in _field_error(refused.text, "users")
    assert "sounds_like" in _field_error(refused.text, "filters")
    assert "180" in _field_error(refused.text, "events_window_days")
    assert console.service.store.configs() == []
    # The page shows what was typed, field by field, as a browser would post it again.
    shown = dict(form_fields(refused.text, "/configurations"))
    for name, value in form.items():
        if name in ("action", "users", "csrf_token", "original"):
            continue
        assert shown.get(name) == value, (name, shown.get(name), value)
    assert "events_sync_series" not in shown


def test_deleting_a_configuration_asks_first_and_cancelling_keeps_it(console: Console) -> None:
    console.service.crm.create_user("ann@example.com", "Ann")
    csrf = console.sign_in("manager")
    console.client.post("/configurations", data=config_form(csrf))
    asked = console.client.post(
        "/configurations", data={"csrf_token": csrf, "action": "delete", "original": "Germany"}
    )
    assert asked.status_code == 200
    assert [c.name for c in console.service.store.configs()] == ["Germany"]
    assert "It is active and covers 1 rep." in asked.text
    confirm = form_fields(asked.text, "/configurations")
    assert ("original", "Germany") in confirm
    assert 'value="confirm_delete"' in asked.text and 'href="/configurations/Germany"' in asked.text
    deleted = console.client.post(
        "/configurations",
        data={**dict(confirm), "action": "confirm_delete"},
        follow_redirects=False,
    )
    assert deleted.status_code == 303 and console.service.store.configs() == []


def test_settings_read_in_the_specs_words(console: Console) -> None:
    console.service.crm.create_user("ann@example.com", "Ann")
    csrf = console.sign_in("manager")
    console.client.post("/configurations", data=config_form(csrf))
    page = console.client.get("/configurations/Germany").text
    for words in (
        "CRM always wins",
        "Mail server always wins",
        "TODAY",
        "LAST MONTH",
        "LAST N DAYS",
        "Selected contacts and User&#39;s records",
        "All contacts",
        "Events users select",
        "Sync both ways",
    ):
        assert words in page, words
    assert ">crm wins<" not in page and ">last n days<" not in page
    listing = console.client.get("/configurations").text
    assert "Mail server to CRM, Mail server always wins, LAST 90 DAYS" in listing


def test_members_are_picked_from_the_orgs_users_and_profiles(console: Console) -> None:
    crm = console.service.crm
    sales = crm.create_profile("Sales")
    crm.create_profile("Support")
    crm.create_user("ann@example.com", "Ann Archer")
    crm.create_user("bob@example.com", "Bob Baker", profile_id=sales.id)
    for n in range(150):
        crm.create_user(f"rep{n:03}@example.com", f"Rep {n:03}")
    csrf = console.sign_in("manager")
    new = console.client.get("/configurations/new").text
    available = new.split('id="available-members"')[1].split("</ul>")[0]
    assert "Profile: Sales" in available and "User: Ann Archer" in available
    assert "more users: find them by name or email" in new
    # Finding works without JavaScript: the form comes back with what was entered.
    found = console.client.post(
        "/configurations",
        data={
            **config_form(csrf, users="ann@example.com", name="Pilot"),
            "action": "search",
            "member_search": "baker",
        },
    )
    assert found.status_code == 200
    available = found.text.split('id="available-members"')[1].split("</ul>")[0]
    assigned = found.text.split('id="assigned-members"')[1].split("</ul>")[0]
    assert "bob@example.com" in available and "rep001@example.com" not in available
    assert "ann@example.com" in assigned and 'value="Pilot"' in found.text
    fields = form_fields(found.text, "/configurations")
    picked = [*fields, ("users", "bob@example.com"), ("profiles", "Sales"), ("action", "save")]
    saved = console.client.post("/configurations", **encoded(picked), follow_redirects=False)
    assert saved.status_code == 303, saved.text
    config = console.service.store.config("Pilot")
    assert config is not None and config.profile_ids == (sales.id,)
    assert len(config.user_ids) == 2


def test_the_page_lists_the_reps_covered_and_warns_of_overrides(console: Console) -> None:
    crm = console.service.crm
    sales = crm.create_profile("Sales")
    ann = crm.create_user("ann@example.com", "Ann Archer", profile_id=sales.id)
    crm.create_user("bob@example.com", "Bob Baker", profile_id=sales.id)
    store = console.service.store
    store.save_config(SyncConfig("Sales", profile_ids=(sales.id,)))
    store.save_config(SyncConfig("Pilot", user_ids=(ann.id,)))
    console.sign_in("manager")
    page = console.client.get("/configurations/Sales").text
    covered = page.split('id="coverage"')[1].split("</section>")[0]
    assert "Reps this configuration covers now (1)" in covered
    assert "bob@example.com" in covered and "ann@example.com" not in covered.split("</div>")[1]
    assert re.search(
        r"Ann Archer &lt;ann@example.com&gt; has the profile Sales but is assigned "
        r"directly to “Pilot”, which wins",
        covered,
    )
    pilot = console.client.get("/configurations/Pilot").text
    assert "overrides “Sales” of their profile Sales" in pilot
