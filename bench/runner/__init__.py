"""ticker's benchmark runner: `bench/run` runs `python -m bench.runner` (cli.py has every
option). A call goes one way, cli -> matrix -> scenarios / storm / extras -> loadrun ->
peers -> procs, cpu, net. bench/README.md ("Layout") says what each module holds and
where to change a scenario."""
