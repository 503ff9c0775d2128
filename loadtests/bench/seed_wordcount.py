"""The seed's word count, single process, as the seed wrote it: for each JSON file, the text with
newlines turned into spaces and the ends stripped, split on whitespace, counted in a dict; then
the total characters and, over all files, a Counter for unique words and the top 10.

    python -m loadtests.bench.seed_wordcount 'corpus/*.json'

Prints one JSON line: the aggregate and the seconds the work took (after start-up).
"""

from __future__ import annotations

import glob
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any


def process_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    text = data["text"].replace("\n", " ").strip()
    words = text.split()
    word_counts: dict[str, int] = {}
    for word in words:
        word_counts[word] = word_counts.get(word, 0) + 1
    return {
        "file": path,
        "char_count": len(text),
        "word_count": len(words),
        "word_counts": word_counts,
    }


def aggregate(results: Iterable[dict[str, Any]], top: int = 10) -> dict[str, Any]:
    files = 0
    total_chars = 0
    total_words = 0
    all_words: Counter[str] = Counter()
    for result in results:
        files += 1
        total_chars += result["char_count"]
        total_words += result["word_count"]
        all_words.update(result["word_counts"])
    return {
        "files": files,
        "total_chars": total_chars,
        "total_words": total_words,
        "unique_words": len(all_words),
        "top_words": [[word, n] for word, n in all_words.most_common(top)],
    }


def main(argv: list[str]) -> int:
    paths = sorted(glob.glob(argv[0]))
    started = time.perf_counter()
    results = [process_file(path) for path in paths]
    summary = aggregate(results)
    elapsed = time.perf_counter() - started
    print(json.dumps({"elapsed_s": elapsed, **summary}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
