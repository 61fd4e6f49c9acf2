"""The parent of ``make bench``: settings, device profiles, the plan, the run folder, the order of
the runtimes' rounds, and the worker processes it starts (``python -m worker``) and talks to
through the typed job (``bench/job.py``).  It never imports the worker's code."""
