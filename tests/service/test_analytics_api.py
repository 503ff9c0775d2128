"""Review analytics through the running service: clean, count, analyze and batch options."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

pytestmark = pytest.mark.serve

ID = "11010519491231002X"  # the GB 11643 example: valid check character


def test_clean_masks_pii_and_folds_traditional(client: httpx.Client) -> None:
    response = client.post(
        "/v1/clean",
        json={
            "text": f"質量很好！電話 13812345678，身份證{ID}，a@b.com，订单号 2024011512345678",
            "options": {"to_simplified": True, "pii": ["phone", "id_card", "email"]},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == (
        "质量很好！电话 [PHONE]，身份证[ID]，[EMAIL]，订单号 2024011512345678"
    )


def test_count_with_user_words_stopwords_and_offsets(client: httpx.Client) -> None:
    text = "我买了小米手机，东西不错"
    options = {"user_words": ["小米手机"], "extra_stopwords": ["东西"], "offsets": True}
    response = client.post("/v1/count", json={"text": text, "options": options})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "小米手机" in body["word_counts"] and "东西" not in body["word_counts"]
    assert [text[t["start_offset"] : t["end_offset"]] for t in body["tokens"]] == list(
        body["word_counts"]
    )
    assert "tokens" not in client.post("/v1/count", json={"text": text}).json()


def test_analyze_adds_language_and_sentiment_only_when_asked(client: httpx.Client) -> None:
    text = "物流很快，质量很好 and great value"
    response = client.post(
        "/v1/analyze", json={"text": text, "analysis": {"language": True, "sentiment": True}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "mixed"
    assert body["sentiment"]["label"] == "positive" and 0 < body["sentiment"]["score"] <= 1
    plain = client.post("/v1/analyze", json={"text": text}).json()
    assert "language" not in plain and "sentiment" not in plain


def test_batch_rows_and_summary_carry_the_analytics(client: httpx.Client) -> None:
    texts = ["质量很好，非常满意", "太差了，用了两天就坏了", "Great value, would buy again"]
    body = b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts)
    options = {"analysis": {"language": True, "sentiment": True}, "clean": {"pii": ["phone"]}}
    response = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"options": json.dumps(options), "include": "language,sentiment"},
    )
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert [line["language"] for line in lines[:3]] == ["zh", "zh", "en"]
    summary = lines[-1]["summary"]
    assert summary["languages"] == {"zh": 2, "en": 1}
    assert summary["sentiment"]["labels"] == {"positive": 2, "neutral": 0, "negative": 1}


def test_batch_flags_duplicates_and_boilerplate(client: httpx.Client) -> None:
    texts = ["物流很快 good value", "此用户未填写评价内容", "物流很快，GOOD value!", "质量一般"]
    body = b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts)
    options = {"dedup": {"duplicates": True, "boilerplate": True, "exclude_from_counts": True}}
    response = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"options": json.dumps(options), "include": "char_count"},
    )
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert [line.get("duplicate_of") for line in lines[:4]] == [None, None, 0, None]
    assert [line.get("boilerplate", False) for line in lines[:4]] == [False, True, False, False]
    summary = lines[-1]["summary"]
    assert summary["duplicates"] == 1 and summary["boilerplate"] == 1
    assert dict(summary["top_words"])["物流"] == 1  # the copy is left out of the counts
