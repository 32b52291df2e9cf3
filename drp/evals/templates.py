"""The user message each student family expects (`--prompt-template`: a family name, a file, or a template)."""

from __future__ import annotations

from pathlib import Path

from drp.errors import UserError
from drp.layout import DEFAULT_FAMILY, FAMILY_INSTRUCTIONS, family_template

# The families' instructions live in drp.layout, shared with `drp export`: train and eval prompts match.
FAMILIES: dict[str, str] = {family: family_template(family) for family in FAMILY_INSTRUCTIONS}


MAX_TEMPLATE_BYTES = 1_000_000


class TemplateError(UserError):
    """A --prompt-template that cannot be used."""


def resolve_template(value: str | None) -> tuple[str, str]:
    """(label, template). A family name, a path to a text file, or a literal containing {problem}."""
    value = value or DEFAULT_FAMILY
    if value in FAMILIES:
        return value, FAMILIES[value]
    path = Path(value)
    if "{problem}" not in value and path.exists() and not path.is_dir():
        from drp.safe_files import UnsafeFile, read_capped_text

        try:  # a regular file of a sane size: never a FIFO that blocks or a device that never ends
            text = read_capped_text(path, MAX_TEMPLATE_BYTES, "template file")
        except UnsafeFile as error:
            raise TemplateError(str(error)) from None
        _check(text, f"template file {path}")
        return str(path), text
    _check(value, "--prompt-template")
    return "custom", value


def _check(template: str, where: str) -> None:
    if "{problem}" not in template:
        raise TemplateError(
            f"{where} has no {{problem}} placeholder; use one of the families {', '.join(FAMILIES)}, "
            "a file, or a template such as '{problem}\\nAnswer in \\boxed{}.'"
        )


def fill_template(template: str, problem: str) -> str:
    # Plain replacement, not str.format: LaTeX in templates and problems is full of braces.
    return template.replace("{problem}", problem)
