"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_yaml(starting_with: str) -> str:
    """The README's first ```yaml block whose text starts with `starting_with`, so the
    examples a user copies are tested as they are written."""
    blocks = [b.split("```", 1)[0] for b in README.read_text().split("```yaml\n")[1:]]
    return next(b for b in blocks if b.startswith(starting_with))
