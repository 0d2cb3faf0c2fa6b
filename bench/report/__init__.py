"""Results folder -> docs/performance.md. `bench/run` calls it at the end of a full or
--quick run; by hand: `bench/run --report bench/results/<folder>`.

Everything in the generated page comes from the JSON in that folder, except the
analysis in bench/findings.md, which is included verbatim (it says which run it was
written for).

  results.py   loading: a folder (plus merged follow-up folders) as one `Results`
  figures.py   the figures of one run, and how a number is written (`f`)
  names.py     peer names and order, scenario order and kinds
  markdown.py  a table from a declaration: columns (head, cell), then rows
  tables.py    every table of the page, declared once (rows.py: their row types)
  goals.py     issue #18's goals; targets.py: issue #5's targets
  sections.py  the table sections; about.py: header, machine, method, reproduce;
               profile.py: py-spy and bench/findings.md
  page.py      the sections in order -> the page
"""

from bench.report.page import render, write

__all__ = ["render", "write"]
