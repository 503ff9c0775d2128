"""A seed-shaped corpus: one JSON file per review dump, {"text": ...}, 50-500 KB each.

Mixed English/Chinese with emoji, HTML fragments, URLs and the rest of what `textgen` puts in a
review; the same seed writes the same bytes on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serve_app.ops.loadtest.textgen import ReviewGenerator

_SEPARATORS = ("\n", "\n\n", " ", "<br/>", "</p><p>")
_ENVELOPE = len(b'{"text": ""}')
# Past the target, a file grows by at most one review (400 characters, 4 bytes each as UTF-8,
# up to 6 when JSON escapes a control character) and a separator.
_OVERSHOOT = 2_600


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    files: int = 200
    min_bytes: int = 50_000
    max_bytes: int = 500_000
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.files < 1:
            raise ValueError(f"files must be >= 1, not {self.files}")
        if self.max_bytes - self.min_bytes < _OVERSHOOT:
            raise ValueError(f"max_bytes must exceed min_bytes by at least {_OVERSHOOT}")


@dataclass(frozen=True, slots=True)
class Corpus:
    directory: Path
    paths: tuple[Path, ...]
    total_bytes: int

    @property
    def pattern(self) -> str:
        return str(self.directory / "*.json")


def _json_size(piece: str) -> int:
    return len(json.dumps(piece, ensure_ascii=False).encode("utf-8")) - 2


def texts(spec: CorpusSpec) -> Iterator[str]:
    """One text per file, each sized so that its JSON file lands within the spec's bounds."""
    gen = ReviewGenerator(spec.seed)
    for _ in range(spec.files):
        target = gen.rng.randint(spec.min_bytes, spec.max_bytes - _OVERSHOOT)
        language = gen.language()
        parts: list[str] = []
        size = _ENVELOPE
        while size < target:
            piece = gen.short(language) + gen.rng.choice(_SEPARATORS)
            parts.append(piece)
            size += _json_size(piece)
        yield "".join(parts)


def encode(text: str) -> bytes:
    return json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")


def write(spec: CorpusSpec, directory: Path) -> Corpus:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    total = 0
    for index, text in enumerate(texts(spec)):
        path = directory / f"review-{index:05d}.json"
        data = encode(text)
        path.write_bytes(data)
        paths.append(path)
        total += len(data)
    return Corpus(directory=directory, paths=tuple(paths), total_bytes=total)
