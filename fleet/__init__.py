"""``make fleet``: run the benchmark suite on several boards from one laptop, over SSH.

Nothing is installed or left running on a board beyond what ``make bench`` needs (the optional
runtimes ``RUNTIMES`` asks for included): the laptop ships the exact commit (``git archive``) and
the edge-runtime artifacts the board's run can use (``make export RUNTIMES=...``), starts the
suite detached (``setsid nohup``), reads its progress from the run folder with short SSH commands,
copies the finished run folder home (verified) and compares the boards.  Modules, one job each:

- :mod:`fleet.config`   the board list (``HOSTS=`` or ``fleet.toml``) and the settings sent to each
- :mod:`fleet.ssh`      the system OpenSSH client: options, connection sharing, failure reasons
- :mod:`fleet.ship`     the commit to ship (refuses a dirty tree) and its upload
- :mod:`fleet.artifacts` which of the laptop's edge-runtime artifacts each board gets
- :mod:`fleet.remote`   start / status / stop / fetch on a board (the shell side is ``board.sh``)
- :mod:`fleet.lock`     who holds a board's lock, since when, and how long to wait
- :mod:`fleet.progress` one progress bar per board
- :mod:`fleet.fetch`    bringing a run folder home, verified by size and hash
- :mod:`fleet.board`    one board's whole course (a thread per board)
- :mod:`fleet.cli`      ``python -m fleet``: validation, the threads, Ctrl-C, the comparison
- :mod:`fleet.loopback` a throwaway ``sshd`` on 127.0.0.1 for the tests and the benchmark
"""
