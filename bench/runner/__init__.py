"""ticker's benchmark runner: `bench/run` runs `python -m bench.runner` (cli.py says
every option). One call goes down this list:

  cli.py          options, what to run (plan), main
  matrix.py       the phases: every peer x every scenario, then the ticker extras
  scenarios.py    scenario names -> what each runs (S3, S1, S2, C, B)
  loadrun.py      one run: readers connect, items are published, readers drain -> JSON
  storm.py        C-N, the connection storm (two runs, the connect CPU, the delay)
  extras.py       publish API (POST), S1 through POST, py-spy
  floors.py       the machine's floor (write(), uvloop, asyncio)
  peers.py        nchan and the Python peers; ticker_peer.py: ticker
  procs.py        every process started, stopped by PID; cpu.py: CPU from /proc
  net.py          ports, readiness, open connections, listen counters
  machine.py      meta.json: the machine and the software
  context.py      the options and what every step is handed (Bench)
  constants.py    peer and scenario lists, the storm's and burst's figures, paths
"""
