"""Helm templates read as far as they can be read without rendering them.

A chart's ``templates/*.yaml`` are Go templates, not YAML. doctor does not
render them (the values come from whoever installs the chart), so every
``{{ ... }}`` action (and a Jinja ``{% ... %}`` tag, as documentation sites
use) stands for an unknown value: a line holding nothing but
actions (``{{- if .Values.x }}``, ``{{- toYaml .Values.env | nindent 8 }}``)
becomes an empty line, and an action inside a value becomes ``$(helm)``,
which every analyzer already treats as an expansion it cannot resolve. Line
numbers stay those of the template. A template whose structure itself is
templated may still not be YAML; the scanner then counts it as unread
instead of reporting it as broken.
"""

from __future__ import annotations

import re

_ACTION_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
UNKNOWN = "$(helm)"
"""What an action becomes inside a value: an expansion doctor cannot resolve."""


def is_templated(text: str) -> bool:
    """Whether a YAML file holds template actions (Helm or Go ``{{ }}``, Jinja ``{% %}``)."""
    return ("{{" in text and "}}" in text) or ("{%" in text and "%}" in text)


def render_unknown(text: str) -> str:
    """The template with its actions replaced, line for line."""

    def one(m: re.Match[str]) -> str:
        return "\n" * m.group(0).count("\n") + UNKNOWN

    replaced = _ACTION_RE.sub(one, text)
    lines = []
    for line in replaced.split("\n"):
        if line.strip().replace(UNKNOWN, "").strip() == "" and UNKNOWN in line:
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)
