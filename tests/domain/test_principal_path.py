"""The principal path template: placeholders checked on save, never failing in a cycle."""

from __future__ import annotations

import pytest

from crmsync.domain.principal_path import expand_principal_path, principal_path_problems


@pytest.mark.parametrize(
    "template",
    ["/{email}/", "/principals/{local}/", "/dav/principals/user/{user}/", "/u/{{x}}/{email}/"],
)
def test_valid_templates_save_and_expand(template: str) -> None:
    assert principal_path_problems(template) == []
    assert expand_principal_path(template, email="ann@example.com", login="ann.l")


def test_each_placeholder_expands_to_the_reps_value() -> None:
    path = "/{email}/{local}/{user}/"
    assert expand_principal_path(path, email="ann@example.com", login="a1") == (
        "/ann@example.com/ann/a1/"
    )
    # Without a login of its own (service account), {user} is the email.
    assert expand_principal_path("/{user}/", email="ann@example.com") == "/ann@example.com/"


@pytest.mark.parametrize(
    "template, shown",
    [
        ("/{login}/", "{login}"),
        ("/{email.upper}/", "{email.upper}"),
        ("/{email[0]}/", "{email[0]}"),
        ("/{0}/", "{0}"),
        ("/{}/", "{}"),
        ("/{email!r}/", "{email!r}"),
        ("/{email:>30}/", "{email:>30}"),
    ],
)
def test_unknown_placeholders_and_attribute_access_are_refused_naming_the_valid_ones(
    template: str, shown: str
) -> None:
    (problem,) = principal_path_problems(template)
    assert shown in problem and "{email}, {local}, {user}" in problem
    with pytest.raises(ValueError):
        expand_principal_path(template, email="ann@example.com")


def test_a_path_needs_a_placeholder_a_leading_slash_and_balanced_braces() -> None:
    assert "must contain a placeholder" in principal_path_problems("/shared/")[0]
    assert principal_path_problems("{email}/") == ["must start with /"]
    assert "braces" in principal_path_problems("/{email/")[0]
