"""The benchmark report (bench/report/) renders committed results folders exactly as the
committed pages: refactoring the report cannot change what it says.

Two folders: `run` (+ `rerun` merged in) has hand-made results with nchan, a profile and
floors; `storm` is a real short run (ticker and ticker-asgi: S3, S1, the burst B-N, the
connection storm C-N, and the extras), its commands' paths made machine-independent and
its 20 ms CPU samples (which the page does not use) left out.

Regenerate the expected pages after a deliberate change to the report:
``uv run --dev python -c 'from tests.test_bench_report import regenerate; regenerate()'``.
"""

from __future__ import annotations

from pathlib import Path

from bench.report import write

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "bench-results"
EXPECTED = DATA / "expected.md"
EXPECTED_STORM = DATA / "expected-storm.md"
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
    write(DATA / "storm", EXPECTED_STORM)


def test_report_renders_the_committed_results_as_the_expected_page(tmp_path: Path) -> None:
    rendered = _render(tmp_path / "performance.md")
    assert rendered == EXPECTED.read_text()


def test_report_renders_storm_burst_and_asgi_runs_as_the_expected_page(tmp_path: Path) -> None:
    write(DATA / "storm", tmp_path / "performance.md")
    assert (tmp_path / "performance.md").read_text() == EXPECTED_STORM.read_text()
