import argparse
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from serve_app.ops.cli import build_parser
from serve_app.ops.exit_codes import ExitCode
from tests.support import free_port


def cleanserve(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serve_app.ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def subcommands() -> dict[str, argparse.ArgumentParser]:
    [group] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def without_help(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if not action.help:
            missing.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += without_help(sub, f"{prefix} {name}")
    return missing


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_has_help_text(name: str) -> None:
    assert without_help(subcommands()[name], f"cleanserve {name}") == []


def test_version() -> None:
    result = cleanserve("--version")
    assert result.returncode == 0 and result.stdout.startswith("cleanserve ")


def test_batch_says_so_when_the_service_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"text": "x"}')
    url = f"http://127.0.0.1:{free_port()}"
    result = cleanserve("batch", str(tmp_path / "*.json"), "--url", url)
    assert result.returncode == 1
    assert "cannot reach cleanserve" in result.stderr


def test_batch_with_no_matching_file_is_a_usage_error(tmp_path: Path) -> None:
    result = cleanserve("batch", str(tmp_path / "*.json"))
    assert result.returncode == 2 and "no such file" in result.stderr


@pytest.mark.serve
def test_batch_streams_files_and_writes_every_record(service_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    texts = [f"review {i} 物流很快\ngreat great" for i in range(25)]
    for i, text in enumerate(texts):
        (data / f"{i:03d}.json").write_text(json.dumps({"id": i, "text": text}))
    (data / "broken.json").write_text("{oops")
    out = tmp_path / "results.jsonl"
    seed = json.dumps(
        {"clean": {"preset": "minimal"}, "count": {"tokenizer": "whitespace", "lowercase": False}}
    )
    result = cleanserve(
        "batch", f"{data}/*.json", "--out", str(out), "--url", service_url, "--options", seed
    )
    # One record failed: the run says how many and exits 3 (it exited 0 before).
    assert result.returncode == ExitCode.RECORDS_FAILED, result.stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 26
    assert [line["source"].rsplit("/", 1)[-1] for line in lines[:25]] == [
        f"{i:03d}.json" for i in range(25)
    ]
    assert lines[3]["text"] == texts[3].replace("\n", " ").strip()
    assert "error" in lines[25]
    assert "total_chars" in result.stdout and "great (50)" in result.stdout
    assert "1 of 26 record(s) failed" in result.stderr


@pytest.mark.serve
def test_batch_exits_0_when_every_record_is_answered(service_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "fine"}\n{"text": "also fine"}\n')
    result = cleanserve("batch", str(tmp_path / "a.jsonl"), "--url", service_url)
    assert result.returncode == 0, result.stderr
    assert "failed" not in result.stderr
