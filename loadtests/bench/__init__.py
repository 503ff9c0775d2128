"""The benchmark: cleanserve against plain baselines, measured in one run on one machine.

    python -m loadtests.bench                 # real time + bulk, ~10 minutes on 2 CPUs
    python -m loadtests.bench --quick         # the same, shorter and smaller
    python -m loadtests.bench --memory        # adds the 100 MB / 1 GB upload memory check

Real time: the service (`cleanserve up`) and a plain uvicorn + FastAPI app over the same core
(one process, and one worker per CPU) under the same closed-loop load (wrk, else aiohttp).
Bulk: the seed's scripts, the core pipeline in one process and `cleanserve batch`, on a seeded
corpus. Every number is printed as a ratio to its baseline from the same run; results land in
results/bench-<time>/ (summary.md, results.json, realtime.png).
"""
