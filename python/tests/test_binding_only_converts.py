"""The binding only converts (read from its sources): behaviour — loops, retries, threads,
sleeps, waiting — lives in the core. What the interpreter itself forces (waits in slices
that see signals, the exit guard) is in ``guard.rs`` alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ALLOWED = {"guard.rs"}

# Rust that makes behaviour of its own: a loop, a thread, a sleep or a condition variable.
BEHAVIOUR = re.compile(r"\bloop\s*\{|\bwhile\b|thread::|\bsleep\s*\(|\bCondvar\b|\bspawn\b")


def code_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of ``path`` without comments and doc comments."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("//", 1)[0]
        if code.strip():
            out.append((n, code))
    return out


@pytest.mark.parametrize(
    "path", sorted(p for p in SRC.glob("*.rs") if p.name not in ALLOWED), ids=lambda p: p.name
)
def test_no_behaviour_outside_the_guard(path: Path) -> None:
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in code_lines(path) if BEHAVIOUR.search(line)]
    assert found == [], "behaviour belongs in the core:\n" + "\n".join(found)


def test_the_check_sees_what_the_guard_does() -> None:
    # The interpreter's needs (slices that see signals, the exit wait) are caught by it.
    assert any(BEHAVIOUR.search(line) for _, line in code_lines(SRC / "guard.rs"))
