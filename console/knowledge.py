"""Knowledge for retrieval: runbooks written for people, in the common Markdown shape.

The Prometheus community's alert runbooks (and most teams' wikis) use one page per
alert: a `# AlertName` title and the sections Meaning, Impact, Diagnosis, Mitigation.
They are imported as documents the retriever can cite; they are never executed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

SECTIONS = ("meaning", "impact", "diagnosis", "mitigation")
MAX_DOC = 256 * 1024
_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")


class KnowledgeError(ValueError):
    """A document that cannot be imported; the message names the file and the line."""


@dataclass(frozen=True)
class KnowledgeDoc:
    title: str
    source: str
    sections: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def alert(self) -> str:
        """The alert the page is about (its title, if it looks like an alert name)."""
        word = self.title.split()[0] if self.title else ""
        return word if re.match(r"^[A-Za-z][A-Za-z0-9_]*$", word) else ""

    @property
    def digest(self) -> str:
        body = "\n".join(f"{k}:{v}" for k, v in sorted(self.sections.items()))
        return hashlib.sha256(f"{self.title}\n{body}".encode()).hexdigest()[:16]


def parse_markdown(text: str, source: str) -> KnowledgeDoc:
    if len(text) > MAX_DOC:
        raise KnowledgeError(f"{source}: larger than {MAX_DOC} bytes")
    if "\x00" in text:
        raise KnowledgeError(f"{source}: contains a NUL character")
    title = ""
    current: str | None = None
    parts: dict[str, list[str]] = {}
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading and len(heading.group(1)) == 1 and not title:
            title = heading.group(2).strip()
            continue
        if heading and len(heading.group(1)) >= 2:
            current = heading.group(2).strip().lower()
            if current in parts:
                raise KnowledgeError(f"{source}:{number}: section {current!r} appears twice")
            parts[current] = []
            continue
        if current is not None:
            parts[current].append(line)
    if not title:
        raise KnowledgeError(f"{source}:1: expected a '# Title' heading")
    body = {name: "\n".join(lines).strip() for name, lines in parts.items()}
    known = {k: v for k, v in body.items() if k in SECTIONS and v}
    if not known:
        raise KnowledgeError(f"{source}: none of the sections {', '.join(SECTIONS)} "
                             "(as '## Meaning' ...) has any text")
    extra = {k: v for k, v in body.items() if k not in SECTIONS and v}
    return KnowledgeDoc(title, source, known, extra)
