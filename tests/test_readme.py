"""The README's example output is what the command prints, so it cannot drift.

Regenerate it after a change to the terminal report with
``python tests/test_readme.py --update``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = ["scan", "examples/contrastive_like.npy"]
PROMPT = "$ gaussaudit " + " ".join(COMMAND)
#: The last line is the scan's wall time: the one thing that may differ.
TIMING = re.compile(r"^\s*\d+\.\d+ s$")


def _block(text: str) -> tuple[int, int]:
    """Line span of the example's output inside the README's code block."""
    lines = text.splitlines()
    start = lines.index(PROMPT) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return start, end


def _normalise(lines) -> list[str]:
    return [("<time>" if TIMING.match(line) else line.rstrip()) for line in lines]


def _printed() -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import run_cli

    rc, out, err = run_cli(*COMMAND, cwd=ROOT, env={"COLUMNS": "80"})
    assert rc == 0, err
    return out


def test_readme_example_output_is_what_the_command_prints():
    text = README.read_text(encoding="utf-8")
    start, end = _block(text)
    shown = _normalise(text.splitlines()[start:end])
    printed = _normalise(_printed().splitlines())
    assert shown == printed, ("README example drifted; run `python tests/test_readme.py --update`\n"
                              + "\n".join(f"{a!r}\n{b!r}" for a, b in zip(shown, printed) if a != b)[:3000])
    assert all(len(line) <= 80 for line in printed), max(printed, key=len)


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    text = README.read_text(encoding="utf-8")
    start, end = _block(text)
    lines = text.splitlines()
    new = [line.rstrip() for line in _printed().splitlines()]
    lines[start:end] = new
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"README.md: example output regenerated ({end - start} → {len(new)} lines)")
