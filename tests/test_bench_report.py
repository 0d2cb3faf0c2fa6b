"""The benchmark report (bench/report/) renders a committed results folder exactly as the
committed page: refactoring the report cannot change what it says.

Regenerate the expected page after a deliberate change to the report:
``uv run python -c 'from tests.test_bench_report import regenerate; regenerate()'``.
"""

from __future__ import annotations

from pathlib import Path

from bench.report import write

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "bench-results"
EXPECTED = DATA / "expected.md"
FINDINGS = ROOT / "bench" / "findings.md"
# The page includes bench/findings.md verbatim; the expected page has this line instead,
# so editing the findings does not break the test.
FINDINGS_MARK = "<<bench/findings.md>>"


def _render(target: Path) -> str:
    write(DATA / "run", target, merge=[DATA / "rerun"])
    text = target.read_text()
    return text.replace(FINDINGS.read_text().strip(), FINDINGS_MARK)


def regenerate() -> None:
    EXPECTED.write_text(_render(EXPECTED))


def test_report_renders_the_committed_results_as_the_expected_page(tmp_path: Path) -> None:
    rendered = _render(tmp_path / "performance.md")
    assert rendered == EXPECTED.read_text()
