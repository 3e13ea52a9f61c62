"""Every ```python block in the README and docs/ runs, in order, one namespace per file.

Blocks that talk to ``http://127.0.0.1:8000`` are pointed at a real ``guess`` server started for the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support import RunningServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SHELL = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_python_examples_run(path: Path, guess_server: RunningServer) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate(python_blocks(path), 1):
        code = block.replace("http://127.0.0.1:8000", guess_server.url)
        try:
            exec(compile(code, f"{path.name}[block {number}]", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"{path.name} block {number} failed: {type(exc).__name__}: {exc}\n{block}")


def test_cli_commands_in_docs_exist() -> None:
    """Every `corral X` named in a bash block is a real subcommand."""
    help_text = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for path in DOCS:
        for block in SHELL.findall(path.read_text()):
            for command in re.findall(r"(?:^|\s)corral (\w+)", block):
                assert command in help_text, f"{path.name} mentions `corral {command}`, which does not exist"
