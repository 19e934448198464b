"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_yaml(starting_with: str) -> str:
    """The README's first ```yaml block whose text starts with `starting_with`, so the
    examples a user copies are tested as they are written."""
    blocks = [b.split("```", 1)[0] for b in README.read_text().split("```yaml\n")[1:]]
    return next(b for b in blocks if b.startswith(starting_with))


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server a fixture started: politely, then for good after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
