from serve_app.service.guards import OPEN_PATHS
from serve_app.service.ingress import openapi_document


def test_without_keys_there_is_no_security_scheme() -> None:
    spec = openapi_document(secured=False)
    assert "securitySchemes" not in spec.get("components", {})
    assert all("security" not in op for ops in spec["paths"].values() for op in ops.values())


def test_with_keys_every_guarded_operation_names_the_bearer_scheme() -> None:
    spec = openapi_document(secured=True)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    guarded = {path for path in spec["paths"] if path not in OPEN_PATHS}
    assert {"/v1/clean", "/v1/count", "/v1/analyze", "/v1/batch"} <= guarded
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert ("security" in operation) == (path in guarded), path
    # The document of a service without keys is not changed by one with them.
    assert "securitySchemes" not in openapi_document(secured=False).get("components", {})


def test_every_error_status_documents_a_body() -> None:
    for path, operations in openapi_document(secured=True)["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response.get("content"), f"{path} {status}"
