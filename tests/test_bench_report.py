"""The benchmark report (bench/report.py) renders a committed results folder exactly as the
committed page: refactoring the report cannot change what it says.

Regenerate the expected page after a deliberate change to the report:
``uv run python -c 'from tests.test_bench_report import regenerate; regenerate()'``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "bench-results"
EXPECTED = DATA / "expected.md"
FINDINGS = ROOT / "bench" / "findings.md"
# The page includes bench/findings.md verbatim; the expected page has this line instead,
# so editing the findings does not break the test.
FINDINGS_MARK = "<<bench/findings.md>>"


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _render(target: Path) -> str:
    _report().write(DATA / "run", target, merge=[DATA / "rerun"])
    text = target.read_text()
    return text.replace(FINDINGS.read_text().strip(), FINDINGS_MARK)


def regenerate() -> None:
    EXPECTED.write_text(_render(EXPECTED))


def test_report_renders_the_committed_results_as_the_expected_page(tmp_path: Path) -> None:
    rendered = _render(tmp_path / "performance.md")
    assert rendered == EXPECTED.read_text()
