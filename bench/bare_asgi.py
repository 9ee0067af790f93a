"""The baseline for the HTTP benchmarks: a bare ASGI endpoint with no framework, no
database, no validation, answering a pre-rendered FHIR Organization of realistic size.
Served by the same uvicorn, the same way, in the same run as HealthGrid."""

import json

BODY = json.dumps({
    "resourceType": "Organization", "id": "123",
    "identifier": [{"system": "https://healthgrid.example/fhir/NamingSystem/org-code",
                    "value": "910102-000123"}],
    "active": True,
    "type": [{"coding": [{"system": "https://healthgrid.example/fhir/CodeSystem/org-type",
                          "code": "general_hospital", "display": "综合医院"}]}],
    "name": "永宁县人民医院", "telecom": [{"system": "phone", "value": "0731-1234567"}],
    "address": [{"text": "城关镇12号", "district": "永宁县", "city": "安平市", "state": "青川省"}],
}, ensure_ascii=False).encode()
HEADERS = [(b"content-type", b"application/fhir+json; charset=utf-8"),
           (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
