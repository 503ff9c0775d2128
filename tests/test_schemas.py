import dataclasses

import pytest
from pydantic import ValidationError

from serve_app import schemas
from serve_app.core import cleaning, counting


@pytest.mark.parametrize(
    ("model", "core"),
    [(schemas.CleanOptions, cleaning.CleanOptions), (schemas.CountOptions, counting.CountOptions)],
)
def test_the_public_options_mirror_the_core_field_for_field(model, core) -> None:  # type: ignore[no-untyped-def]
    core_defaults = {f.name: f.default for f in dataclasses.fields(core)}
    model_defaults = {name: f.default for name, f in model.model_fields.items()}
    assert model_defaults == core_defaults
    assert model().to_core() == core()


def test_options_convert_to_the_core_types() -> None:
    options = schemas.CountOptions(stopwords=["en", "zh"], top_k=3).to_core()
    assert options.stopwords == ("en", "zh") and options.top_k == 3
    assert schemas.CleanOptions(urls="mask").to_core().urls == "mask"


@pytest.mark.parametrize(
    "bad",
    [
        {"options": {"colour": "blue"}},
        {"options": {"lowercase": "yes"}},
        {"options": {"lowercase": 1}},
        {"options": {"max_repeat": 0}},
        {"options": {"urls": "shred"}},
    ],
)
def test_clean_options_reject_unknown_fields_and_wrong_types(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        schemas.CleanRequest.model_validate({"text": "x", **bad})
    assert info.value.errors()[0]["loc"][0] == "options"


def test_a_lone_surrogate_is_rejected_with_its_position() -> None:
    with pytest.raises(ValidationError, match=r"lone surrogate \(U\+D800\) at position 2"):
        schemas.AnalyzeRequest(text="ab\ud800")


def test_every_request_model_has_an_example_that_validates() -> None:
    for model in (schemas.CleanRequest, schemas.CountRequest, schemas.AnalyzeRequest):
        examples = model.model_json_schema()["examples"]
        assert examples
        for example in examples:
            model.model_validate(example)


def test_user_words_with_a_lone_surrogate_are_rejected() -> None:
    # They come back in word_counts and tokens, which no UTF-8 response can carry.
    with pytest.raises(ValidationError, match="lone surrogate"):
        schemas.CountRequest.model_validate({"text": "x", "options": {"user_words": ["a\ud800"]}})
    with pytest.raises(ValidationError, match="lone surrogate"):
        schemas.CountOptions.model_validate({"extra_stopwords": ["\udc00"]})


def test_analytics_options_convert_to_the_core() -> None:
    request = schemas.AnalyzeRequest.model_validate(
        {"text": "x", "clean": {"pii": ["email", "phone"]}, "analysis": {"sentiment": True}}
    )
    assert request.clean.to_core().pii == ("phone", "email")
    assert request.analysis.to_core().sentiment and not request.analysis.to_core().language
    batch = schemas.BatchOptions.model_validate_json('{"dedup": {"duplicates": true}}')
    assert batch.dedup.to_core().duplicates and batch.dedup.to_core().threshold == 0.8
