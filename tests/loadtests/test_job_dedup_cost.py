"""The job dedup cost probe runs both passes on a small corpus and reports each one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtests.bench import job_dedup_cost


def test_the_probe_measures_both_passes_of_a_corpus_with_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert job_dedup_cost.main([str(tmp_path), "--corpus", "short", "--records", "400"]) == 0
    line = capsys.readouterr().out
    found = re.search(r"400 records, (\d+) duplicates", line)
    assert found is not None and int(found.group(1)) > 10, line
    assert re.search(r"first pass [\d.]+, driver [\d.]+ .*second pass [\d.]+", line), line
