"""ticker's load benchmark (not shipped in the wheel): `bench.runner` runs it and
`bench.report` turns its results into docs/performance.md. Start with bench/README.md."""
