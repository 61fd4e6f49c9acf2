"""How the tests start a command the way a user's shell would.

A shell without job control (``make test &``, a CI step, ``nohup``) starts a background command with
SIGINT ignored, and Python then leaves it ignored: the suite and the fleet must still take Ctrl-C.
The tests reproduce that with a real shell's ``trap '' INT`` and ``exec`` rather than a
``preexec_fn``: Python code run between fork and exec in the test process (which holds ONNX Runtime's,
OpenVINO's and PyTorch's threads) is what Python's documentation warns can deadlock or crash it."""

from __future__ import annotations

SIGINT_IGNORED = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]  # prefix: the command after it inherits SIG_IGN
