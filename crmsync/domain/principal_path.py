"""The org's principal path template: where a rep's principal lives on a DAV server.

Placeholders are named fields only (``{email}``, ``{local}``, ``{user}``): no attribute
access, indexes, conversions or format specs, so a template is checked once when it is
saved and can never fail later in a cycle.
"""

from __future__ import annotations

import string

PRINCIPAL_PATH_PLACEHOLDERS: dict[str, str] = {
    "email": "the rep's email address (ann@example.com)",
    "local": "the part of the email before @ (ann)",
    "user": "the rep's login when it is not the email (per-rep sign-in), else the email",
}
_VALID = ", ".join("{" + name + "}" for name in PRINCIPAL_PATH_PLACEHOLDERS)


def principal_path_problems(template: str) -> list[str]:
    """Why ``template`` is no usable principal path, one sentence each (empty: it is)."""
    problems: list[str] = []
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError:
        return [f"unbalanced braces: the placeholders are {_VALID}; write a brace as {{{{ or }}}}"]
    for name, spec, conversion in fields:
        if name not in PRINCIPAL_PATH_PLACEHOLDERS or spec or conversion:
            written = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            problems.append(f"{written} is not a placeholder: the valid ones are {_VALID}")
    if not fields:
        problems.append(f"must contain a placeholder for the rep ({_VALID}), e.g. /{{email}}/")
    if not template.startswith("/"):
        problems.append("must start with /")
    return problems


def expand_principal_path(template: str, *, email: str, login: str = "") -> str:
    """``template`` with the rep's values in place; raises `ValueError` for a placeholder
    `principal_path_problems` refuses (a template without any is a single principal)."""
    if any("is not a placeholder" in p or "braces" in p for p in principal_path_problems(template)):
        raise ValueError(f"invalid principal path {template!r}")
    local = email.rpartition("@")[0] or email
    values = {"email": email, "local": local, "user": login or email}
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(values[name])
    return "".join(parts)
