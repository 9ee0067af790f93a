"""Type-level ``$operations``: their declaration and their typed input.

A provider declares each operation once (``OperationDef``: name, the canonical URL of its
OperationDefinition, the handler, the input parameters it takes); the CapabilityStatement
lists them and the registry invokes them (R4 operations.html):

- ``POST [base]/[type]/$[name]`` with a ``Parameters`` body — or, when the operation names
  a ``resource_param``, with that resource posted bare (operations.html#executing: an
  operation whose only resource input is one resource may take it directly);
- ``GET [base]/[type]/$[name]?p=v`` only when ``get`` is set: the operation changes nothing
  and all its inputs are primitive.

The handler gets an ``OperationRequest`` and returns a resource (a Bundle, Parameters …),
which the registry prunes and validates like any other output — or a ``Written`` when the
operation made something (``Appointment/$book``): 201 with Location and ETag, or 200 when a
retried request (same ``Idempotency-Key`` header) answers the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .outcome import BAD_OPERATION_PARAMETER, FhirError

IGNORED_QUERY = frozenset({"_format", "_pretty"})
OPERATION_HEADERS = ("idempotency-key",)


def bad_parameter(operation: str, message: str) -> FhirError:
    return FhirError(BAD_OPERATION_PARAMETER, f"${operation}: {message}", issue="invalid",
                     detail={"operation": operation})


@dataclass(frozen=True)
class OperationRequest:
    """One invocation: the input parameters as (name, value) pairs in the order given —
    a ``value[x]`` as its JSON value, a ``resource`` as its dict, a GET parameter as text —
    and where it came from."""

    resource_type: str
    name: str
    parameters: tuple[tuple[str, Any], ...]
    base: str
    actor: Any = None
    # The request headers an operation may act on (lower-case names): ``idempotency-key``.
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    def values(self, name: str) -> list[Any]:
        return [v for n, v in self.parameters if n == name]

    def one(self, name: str) -> Any:
        found = self.values(name)
        if len(found) > 1:
            raise bad_parameter(self.name, f"parameter '{name}' is given {len(found)} times; it takes one value")
        return found[0] if found else None

    def resource(self, name: str, resource_type: str) -> dict[str, Any]:
        value = self.one(name)
        if value is None:
            raise bad_parameter(self.name, f"parameter '{name}' (a {resource_type}) is required")
        if not isinstance(value, dict) or value.get("resourceType") != resource_type:
            raise bad_parameter(self.name, f"parameter '{name}' must be a {resource_type} resource")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.one(name)
        if value is None:
            return default
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise bad_parameter(self.name, f"parameter '{name}' is an integer from {minimum} to {maximum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.one(name)
        if value is None:
            return default
        value = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
        if not isinstance(value, bool):
            raise bad_parameter(self.name, f"parameter '{name}' is true or false")
        return value


Handler = Callable[[Session, OperationRequest], dict[str, Any]]


@dataclass(frozen=True)
class OperationDef:
    """``name`` without the ``$``; ``definition``: the canonical URL of the
    OperationDefinition it implements; ``parameters``: the input names it accepts (others
    are refused, never ignored); ``resource_param``: the input a bare resource body stands
    for; ``get``: may be invoked by GET (it changes nothing and its inputs are primitive)."""

    name: str
    definition: str
    handler: Handler
    parameters: tuple[str, ...]
    documentation: str = ""
    resource_param: str | None = None
    get: bool = False


def from_body(op: OperationDef, body: Any) -> tuple[tuple[str, Any], ...]:
    """The input of a POST: a validated ``Parameters`` resource (or the bare resource that
    stands for ``op.resource_param``) as (name, value) pairs."""
    if body.get("resourceType") != "Parameters":
        if op.resource_param is None:
            raise bad_parameter(op.name, f"the body is a {body.get('resourceType')}; this operation takes a "
                                         f"Parameters resource")
        return _known(op, [(op.resource_param, body)])
    pairs = []
    for i, param in enumerate(body.get("parameter", [])):
        name = param["name"]
        if "part" in param:
            raise bad_parameter(op.name, f"parameter[{i}] '{name}': multi-part parameters are not supported here")
        values = [v for k, v in param.items() if k.startswith("value") or k == "resource"]
        if len(values) != 1:
            raise bad_parameter(op.name, f"parameter[{i}] '{name}' needs exactly one value[x] or resource")
        pairs.append((name, values[0]))
    return _known(op, pairs)


def from_query(op: OperationDef, items: Iterable[tuple[str, str]]) -> tuple[tuple[str, Any], ...]:
    return _known(op, [(k, v) for k, v in items if k not in IGNORED_QUERY])


def _known(op: OperationDef, pairs: list[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    for name, _ in pairs:
        if name not in op.parameters:
            raise bad_parameter(op.name, f"unknown parameter '{name}'; this operation takes: "
                                         f"{', '.join(op.parameters)}")
    return tuple(pairs)
