"""A job with dedup.duplicates on both engines and 1 or 2 workers, in a Ray of its own; one JSON
line per run: engine, workers, every row's duplicate_of by "source#index", the summary.

    RAY_AUTH_MODE=disabled python -m tests.service.job_dedup_engines IN_DIR OUT_DIR TEMP_DIR
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import orjson
import ray

from serve_app.core.analysis.dedup import DedupOptions
from serve_app.core.pipeline import BulkOptions
from serve_app.service import jobs
from serve_app.service.storage import InputFile, StorageConfig

OPTIONS = BulkOptions(
    dedup=DedupOptions(duplicates=True, boilerplate=True, exclude_from_counts=True)
)


def main(source: str, out: str, temp_dir: str) -> None:
    paths = sorted(Path(source).iterdir())
    files = tuple(InputFile(str(p), p.stat().st_size) for p in paths)
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
        _temp_dir=temp_dir,
    )  # fmt: skip
    for engine in ("ray-tasks", "ray-data"):
        for workers in (1, 2):
            target = os.path.join(out, f"{engine}-{workers}")
            os.makedirs(target)
            spec = jobs.JobSpec(
                id=f"{engine}-{workers}",
                files=files,
                output=target,
                storage=StorageConfig(roots=(source, out)),
                options=OPTIONS,
                max_workers=workers,
                engine=engine,
            )
            spec = dataclasses.replace(spec, group_bytes=jobs.MIN_GROUP_BYTES)
            moves: list[int] = []
            summary, progress = jobs.run_pipeline(spec, lambda p, r: moves.append(p.bytes))
            rows = {}
            for shard in sorted(Path(target).glob("part-*.ndjson")):
                for line in shard.read_bytes().splitlines():
                    row = orjson.loads(line)
                    rows[f"{row['source']}#{row['index']}"] = row.get("duplicate_of")
            shutil.rmtree(target)
            report = {
                "engine": engine,
                "workers": workers,
                "groups": len(jobs.group_items(spec)),
                "rows": rows,
                "summary": summary,
                "progress": progress.to_dict(),
                "moves": moves,
            }
            print(json.dumps(report), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
