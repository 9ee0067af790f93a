"""How FHIR JSON leaves the server: pruning of empty elements, serialisation and the
``application/fhir+json; charset=utf-8`` response every /fhir answer carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

FHIR_JSON = "application/fhir+json; charset=utf-8"


def prune(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively.

    FHIR JSON forbids empty elements (R4 json.html: no nulls, no empty arrays or objects,
    no empty strings), so mappers may build dicts naively and prune once.
    ``False`` and ``0`` are values, not emptiness, and stay.
    """
    if isinstance(value, Mapping):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        return [v for v in (prune(x) for x in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def wants_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def fhir_json_response(body: dict[str, Any], *, status: int = 200, pretty: bool = False,
                       headers: Mapping[str, str] | None = None) -> Response:
    # ensure_ascii=False: Chinese names travel as UTF-8, not as \\uXXXX escapes.
    text = json.dumps(body, ensure_ascii=False, indent=2 if pretty else None,
                      separators=None if pretty else (",", ":"))
    return Response(text.encode("utf-8"), status_code=status, media_type=FHIR_JSON,
                    headers=dict(headers or {}))
