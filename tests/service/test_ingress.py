"""The real-time HTTP API, end to end through HAProxy, the ingress and both deployments."""

from collections import Counter

import httpx
import pytest

pytestmark = pytest.mark.serve

SEED_CLEAN = {"preset": "minimal"}
SEED_COUNT = {"tokenizer": "whitespace", "lowercase": False}
SEED_TEXTS = [
    "  Great product!\nWould buy again  ",
    "物流很快，包装很好！\n\n质量 不错 不错",
    "a a b\tb\tb\r\nc  <b>html</b> &amp; café cafe\u0301 😀😀",
    "",
    "\n\n",
]


def seed_analysis(text: str) -> dict[str, object]:
    """What the original script produced for one file."""
    cleaned = text.replace("\n", " ").strip()
    counts: dict[str, int] = {}
    for word in cleaned.split():
        counts[word] = counts.get(word, 0) + 1
    return {"text": cleaned, "char_count": len(cleaned), "word_counts": counts}


def test_health(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_clean(client: httpx.Client) -> None:
    response = client.post(
        "/v1/clean",
        json={
            "text": "<p>Ｇｒｅａｔ  value!!!!!</p>\n see https://shop.example/p/1 物流很快，",
            "options": {"urls": "mask", "max_repeat": 2},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"text": "Great value!! see [URL] 物流很快，", "char_count": len(body["text"])}


def test_count_counts_the_text_as_given(client: httpx.Client) -> None:
    response = client.post("/v1/count", json={"text": "物流很快，物流也很好 Fast fast <b>"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["word_counts"]["物流"] == 2 and body["word_counts"]["fast"] == 2
    assert body["word_count"] == sum(body["word_counts"].values())
    assert body["unique_words"] == len(body["word_counts"])
    assert "b" in body["word_counts"]  # not cleaned: the tag's letters count


def test_analyze_counts_the_cleaned_text(client: httpx.Client) -> None:
    response = client.post(
        "/v1/analyze",
        json={
            "text": "<b>Great</b> great GREAT 物流很快 的",
            "count": {"stopwords": ["zh"], "top_k": 1},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "Great great GREAT 物流很快 的"
    assert body["char_count"] == len(body["text"])
    assert body["word_counts"] == {"great": 3}
    assert body["word_count"] == 5 and body["unique_words"] == 3


@pytest.mark.parametrize("text", SEED_TEXTS)
def test_analyze_in_seed_mode_equals_the_original_script(client: httpx.Client, text: str) -> None:
    response = client.post(
        "/v1/analyze", json={"text": text, "clean": SEED_CLEAN, "count": SEED_COUNT}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = seed_analysis(text)
    assert body["text"] == expected["text"]
    assert body["char_count"] == expected["char_count"]
    assert body["word_counts"] == expected["word_counts"]
    assert list(body["word_counts"]) == list(expected["word_counts"])  # first-occurrence order


def test_concurrent_requests_each_get_their_own_answer(client: httpx.Client) -> None:
    # Requests that share one batched handle call must not get each other's results.
    import concurrent.futures

    texts = [f"word{i} " * (i % 7 + 1) for i in range(60)]

    def analyze(text: str) -> dict[str, object]:
        return client.post("/v1/analyze", json={"text": text, "count": SEED_COUNT}).json()  # type: ignore[no-any-return]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(analyze, texts))
    for text, result in zip(texts, results, strict=True):
        assert result["word_counts"] == dict(Counter(text.split()))


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/clean", {"text": "x", "options": {"colour": "red"}}, "colour"),
        ("/v1/clean", {"text": "x", "options": {"lowercase": "yes"}}, "lowercase"),
        ("/v1/count", {"text": "x", "options": {"tokenizer": "morse"}}, "tokenizer"),
        ("/v1/count", {"text": "x", "options": {"stopwords": ["fr"]}}, "stopwords"),
        ("/v1/analyze", {"text": "x", "clean": {"max_repeat": 0}}, "max_repeat"),
        ("/v1/analyze", {"text": 42}, "text"),
        ("/v1/analyze", {}, "text"),
        ("/v1/analyze", {"text": "x", "surprise": 1}, "surprise"),
    ],
)
def test_bad_options_get_422_naming_the_field(
    client: httpx.Client, path: str, payload: dict[str, object], field: str
) -> None:
    response = client.post(path, json=payload)
    assert response.status_code == 422
    assert any(field in map(str, error["loc"]) for error in response.json()["detail"])


def test_malformed_json_gets_422(client: httpx.Client) -> None:
    response = client.post(
        "/v1/analyze",
        content=b'{"text": "unterminated',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "detail" in response.json()


def test_a_lone_surrogate_gets_422_not_a_500(client: httpx.Client) -> None:
    response = client.post(
        "/v1/clean", content=b'{"text": "ok \\ud800"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "lone surrogate" in response.text


def test_openapi_documents_the_contract_with_examples(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/clean", "/v1/count", "/v1/analyze", "/v1/batch", "/healthz"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["AnalyzeRequest"]["examples"]
    assert client.get("/docs").status_code == 200
