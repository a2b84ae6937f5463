"""Golden outputs of the shipped examples: what each view prints is checked
line by line, so a change to a report is a visible diff, and the README's
example output is what the command prints (it cannot drift).

After an intended change to a report, regenerate them all with
``python tests/test_golden_outputs.py --update`` and read the diff.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
README_COMMAND = ["scan", "examples/contrastive_like.npy"]
PROMPT = "$ gaussaudit " + " ".join(README_COMMAND)
#: A scan's wall time: the one thing that may differ between runs.
TIMING = re.compile(r"^\s*\d+\.\d+ s$")

#: golden file → (command, terminal width)
VIEWS = {
    "contrastive_like.160.txt": (["scan", "examples/contrastive_like.npy"], 160),
    "supervised_like.80.txt": (["scan", "examples/supervised_like.parquet"], 80),
    "contrastive_like.md": (["scan", "examples/contrastive_like.npy", "--markdown", "-"], 80),
    "supervised_like.md": (["scan", "examples/supervised_like.parquet", "--markdown", "-"], 80),
}


def _normalise(lines) -> list[str]:
    return [("<time>" if TIMING.match(line) else line.rstrip()) for line in lines]


def _printed(command, width: int = 80) -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import run_cli

    rc, out, err = run_cli(*command, cwd=ROOT, env={"COLUMNS": str(width)})
    assert rc == 0, err
    return out


def _readme_block(text: str) -> tuple[int, int]:
    """Line span of the example's output inside the README's code block."""
    lines = text.splitlines()
    start = lines.index(PROMPT) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return start, end


def _diff(shown, printed) -> str:
    pairs = [f"golden:  {a!r}\nprinted: {b!r}" for a, b in zip(shown, printed) if a != b]
    if len(shown) != len(printed):
        pairs.append(f"{len(shown)} golden lines, {len(printed)} printed")
    return "\n".join(pairs)[:3000]


def test_readme_example_output_is_what_the_command_prints():
    text = README.read_text(encoding="utf-8")
    start, end = _readme_block(text)
    shown = _normalise(text.splitlines()[start:end])
    printed = _normalise(_printed(README_COMMAND).splitlines())
    assert shown == printed, ("README example drifted; run `python tests/test_golden_outputs.py --update`\n"
                              + _diff(shown, printed))
    assert all(len(line) <= 80 for line in printed), max(printed, key=len)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view_matches_its_golden_output(name):
    command, width = VIEWS[name]
    shown = _normalise((GOLDEN / name).read_text(encoding="utf-8").splitlines())
    printed = _normalise(_printed(command, width).splitlines())
    assert shown == printed, (f"{name} changed; if intended, run `python tests/test_golden_outputs.py --update`\n"
                              + _diff(shown, printed))
    if name.endswith(".txt"):  # the terminal fits its width; markdown lines are paragraphs
        assert all(len(line) <= width for line in printed), max(printed, key=len)


def _update() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = _readme_block(text)
    lines = text.splitlines()
    lines[start:end] = [line.rstrip() for line in _printed(README_COMMAND).splitlines()]
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, (command, width) in VIEWS.items():
        (GOLDEN / name).write_text("\n".join(line.rstrip() for line in _printed(command, width).splitlines()) + "\n",
                                   encoding="utf-8")
    print(f"regenerated the README example and {len(VIEWS)} golden outputs in {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    _update()
