"""The worker process: one model under one runtime configuration, measured cell by cell.

Started by the parent (``bench/supervisor.py``) as ``python -m worker``; it speaks JSON lines
(``worker/process.py``).  The parent never imports this package: what both sides need (the job)
is in ``bench/job.py``, and the measuring library in ``runners/``.
"""
