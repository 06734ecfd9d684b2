"""Cold start of the local stack: median of 5 fresh interpreters (goal <= 3 s).

Each run is a new Python process, so imports are paid every time, as when a
learner opens a notebook. Two figures per run: ``import`` (import localaws)
and ``start`` (localaws.start() until the endpoint answers its first S3
call). Prints the medians and their ratio to the 3 s goal.
"""
import json
import statistics
import subprocess
import sys

import _results

RUN = r"""
import json, time
t0 = time.perf_counter()
import localaws
t1 = time.perf_counter()
s = localaws.start()
s.client("s3").list_buckets()
t2 = time.perf_counter()
s.stop()
print(json.dumps({"import": t1 - t0, "start": t2 - t1}))
"""

GOAL_S = 3.0


def main(runs: int = 5) -> None:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    imports = statistics.median(r["import"] for r in results)
    starts = statistics.median(r["start"] for r in results)
    total = statistics.median(r["import"] + r["start"] for r in results)
    print(f"cold start over {runs} runs (median): import {imports:.2f} s, "
          f"start to first answer {starts:.2f} s, total {total:.2f} s")
    print(f"total / goal ({GOAL_S:.0f} s) = {total / GOAL_S:.2f}  ->  "
          f"{'within goal' if total <= GOAL_S else 'OVER GOAL'}")
    _results.record("cold_start", f"total / goal ({GOAL_S:.0f} s)", total / GOAL_S, goal="<= 1",
                    note=f"median total {total:.2f} s of {runs} fresh interpreters")
    _results.record("cold_start", "import localaws (median)", imports, unit="s")
    _results.record("cold_start", "localaws.start() to first S3 answer (median)", starts, unit="s")


if __name__ == "__main__":
    main()
