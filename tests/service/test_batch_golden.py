"""/v1/batch answers byte for byte as pinned in tests/service/golden/ (see batch_golden)."""

import httpx
import pytest

from tests.service.batch_golden import GOLDEN, normalize, post, uploads

pytestmark = pytest.mark.serve


@pytest.mark.parametrize("upload", uploads(), ids=lambda upload: upload.name)
def test_the_answer_is_the_pinned_bytes(client: httpx.Client, upload) -> None:  # type: ignore[no-untyped-def]
    response = post(client, upload)
    assert response.status_code == 200, response.text
    assert normalize(response.content) == (GOLDEN / f"{upload.name}.ndjson").read_bytes()
