"""Results folder -> docs/performance.md. `bench/run` calls it at the end of a full or
--quick run; by hand: `bench/run --report bench/results/<folder>`.

Everything in the generated page comes from the JSON in that folder, except the
analysis in bench/findings.md, which is included verbatim (it says which run it was
written for). page.py lists the sections in order; tables.py declares every table.
bench/README.md ("Layout") says what each module holds and where to change a table.
"""

from bench.report.page import render, write

__all__ = ["render", "write"]
