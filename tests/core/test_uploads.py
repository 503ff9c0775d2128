"""core.uploads: a chunk of frames in, encoded lines and a partial summary out."""

import pytest

from serve_app.core.cleaning import CleanOptions
from serve_app.core.counting import CountOptions
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions, framer_for
from serve_app.core.uploads import analyze_chunk, clean_chunk, count_chunk
from tests.service.batch_golden import uploads

SEED = BulkOptions(
    clean=CleanOptions(preset="minimal"),
    count=CountOptions(tokenizer="whitespace", lowercase=False),
)


@pytest.mark.parametrize("options", [BulkOptions(), SEED], ids=["standard", "seed"])
def test_two_hops_answer_as_one(options: BulkOptions) -> None:
    """The two-hop path the hop benchmark measures gives the same bytes as the one hop."""
    parse = ParseOptions()
    for upload in uploads():
        framer = framer_for(
            upload.content_type,
            parse,
            content_encoding=upload.headers.get("content-encoding"),
            piece_bytes=4096,
        )
        frames = framer.feed(upload.body) + framer.close()
        one = analyze_chunk(frames, parse, options)
        two = count_chunk(clean_chunk(frames, parse, options.clean), options)
        assert two == one, upload.name
