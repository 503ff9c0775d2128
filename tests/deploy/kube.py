"""Check Kubernetes manifests offline, as the API server would on `kubectl apply`.

A CRD's `openAPIV3Schema` is OpenAPI v3.0 with Kubernetes extensions, not plain JSON Schema:

* `nullable: true` allows null; rewritten to an `anyOf` with `{"type": "null"}`.
* `x-kubernetes-int-or-string: true` comes with an `anyOf` of integer and string; added if not.
* `format: int32` / `int64` are range checks the API server makes; given to jsonschema as formats.
* Unknown fields: CRD schemas rarely say `additionalProperties: false`, so JSON Schema would let
  a typo through. The API server does not: structural-schema pruning drops any field not in
  `properties` (unless `x-kubernetes-preserve-unknown-fields`), and `kubectl apply`'s default
  strict field validation turns that into an error. `unknown_fields` walks the manifest the way
  pruning does.
* `x-kubernetes-list-type: map` / `set`: duplicate keys are rejected; `list_duplicates` checks.
* `x-kubernetes-validations` are CEL rules, which are not evaluated here; `cel_fields` lists the
  fields that carry them so a test can insist the manifest sets none of them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# metav1.ObjectMeta's fields: the root `metadata` is `type: object` in every CRD schema, and the
# API server validates it as ObjectMeta instead.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
    }
)
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def crd_schema(crd_path: Path, api_version: str) -> dict[str, Any]:
    """The `openAPIV3Schema` of the CRD version that `api_version` ("group/version") names."""
    crd = yaml.safe_load(crd_path.read_text(encoding="utf-8"))
    group, version = api_version.split("/")
    if crd["spec"]["group"] != group:
        raise ValueError(f"{crd_path} defines {crd['spec']['group']}, not {group}")
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version and entry.get("served", True):
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise ValueError(f"{crd_path} serves no version {version!r}")


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items()}
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    for name, (low, high) in _INT_RANGES.items():

        def in_range(value: object, low: int = low, high: int = high) -> bool:
            return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high

        checker.checks(name)(in_range)
    return checker


def schema_errors(document: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    # Draft 4 is the JSON Schema that OpenAPI v3.0 is built on; it also refuses 2.0 for an
    # integer, as the API server does.
    validator = jsonschema.Draft4Validator(
        _to_json_schema(schema), format_checker=_format_checker()
    )
    return [
        f"{_path(error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _path(steps: Iterable[str | int]) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


def unknown_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Fields structural-schema pruning would drop (and strict field validation reject)."""
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                yield from unknown_fields(item, items, f"{path}[{index}]")
        return
    if not isinstance(value, dict):
        return
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    for key, child in value.items():
        where = f"{path}.{key}" if path else key
        if path == "" and key == "metadata":
            yield from (f"metadata.{k}" for k in child if k not in OBJECT_META_FIELDS)
        elif properties is not None and key in properties:
            yield from unknown_fields(child, properties[key], where)
        elif isinstance(additional, Mapping):
            yield from unknown_fields(child, additional, where)
        elif not (preserve or additional is True):
            yield where


def list_duplicates(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Entries of `x-kubernetes-list-type: map|set` lists that repeat a key."""
    if isinstance(value, list):
        kind = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: set[str] = set()
        for index, item in enumerate(value):
            if kind == "map" and isinstance(item, dict):
                # A missing key defaults (protocol: TCP); the server compares after defaulting.
                key = repr([item.get(k, _default(schema, k)) for k in keys])
            elif kind == "set":
                key = repr(item)
            else:
                key = None
            if key is not None:
                if key in seen:
                    yield f"{path}[{index}] repeats {key}"
                seen.add(key)
            items = schema.get("items")
            if isinstance(items, Mapping):
                yield from list_duplicates(item, items, f"{path}[{index}]")
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            sub = properties.get(key, additional if isinstance(additional, Mapping) else None)
            if sub is not None:
                yield from list_duplicates(child, sub, f"{path}.{key}" if path else key)


def _default(list_schema: Mapping[str, Any], key: str) -> Any:
    return list_schema.get("items", {}).get("properties", {}).get(key, {}).get("default")


def cel_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Fields set in the manifest whose schema has CEL rules (not evaluated offline)."""
    if schema.get("x-kubernetes-validations"):
        yield path or "<root>"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, child in value.items():
            if key in properties:
                yield from cel_fields(child, properties[key], f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from cel_fields(item, schema["items"], f"{path}[{index}]")


def crd_errors(document: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Everything the API server would refuse in `document`, as far as it can be told offline."""
    errors = schema_errors(document, schema)
    errors += [f"{p}: unknown field" for p in unknown_fields(document, schema)]
    errors += [f"{p}: duplicate entry" for p in list_duplicates(document, schema)]
    return errors


def mutated(document: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with `value` at a dotted `path` ("a.b[0].c"), for negative tests."""
    copied = copy.deepcopy(dict(document))
    *parents, leaf = _steps(path)
    node: Any = copied
    for step in parents:
        node = node[step]
    node[leaf] = value
    return copied


def renamed(document: Mapping[str, Any], path: str, new_key: str) -> dict[str, Any]:
    """A copy of `document` with the key at `path` renamed: a misspelled field."""
    copied = copy.deepcopy(dict(document))
    *parents, leaf = _steps(path)
    node: Any = copied
    for step in parents:
        node = node[step]
    node[new_key] = node.pop(leaf)
    return copied


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            steps.append(int(index))
            rest = rest.removeprefix("[")
    return steps
