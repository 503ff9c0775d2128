import pytest

from serve_app.core.analysis.language import detect


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("质量很好，物流很快，下次还来", "zh"),
        ("這個質量很好，物流很快", "zh"),
        ("Great product, fast shipping, would buy again", "en"),
        ("Très bon produit, livraison rapide", "fr"),
        ("物流很快 great value for money", "mixed"),
        ("iPhone 很好用，推荐购买", "zh"),  # a brand name does not make it mixed
        ("!!! 123 😀", None),
        ("", None),
    ],
)
def test_language(text: str, code: str | None) -> None:
    assert detect(text) == code
