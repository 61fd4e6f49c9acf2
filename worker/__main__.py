import sys
import time

# before the imports (a second or more): the log shows that a comparison's workers import at once
print(f"worker: started at {time.monotonic():.6f}", file=sys.stderr, flush=True)

from worker.process import main  # noqa: E402

main()
