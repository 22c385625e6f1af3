"""The spec as the fake uses it: the route table, and request/response validation.

Routes come from the ``paths`` of the spec (:func:`~flireo_async.testing.load_spec`), so a new or renamed
endpoint in the spec shows up here without an edit (its handler is still needed). Bodies,
query parameters and responses are checked with ``jsonschema`` (Draft 2020-12, the dialect of
OpenAPI 3.1); ``$ref`` pointers resolve through a registry that holds the whole document.
``format`` is asserted for ``email`` and ``uri`` (what the API would reject) and loosely for
``date-time``: any ISO 8601 form Python can parse passes, with or without milliseconds.

``oneOf`` is read the way OpenAPI authors usually mean it: when the schema has a
``discriminator`` and the instance carries a mapped value, only that branch is checked;
otherwise the instance must match *at least* one branch (``anyOf``). Strict JSON Schema
``oneOf`` would reject valid bodies whenever branches overlap (an empty ``end_call`` config
also matches the free-form fallback object, for instance).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from ._clock import parse_timestamp

__all__ = ["Route", "SpecIndex", "format_errors"]

SPEC_URI = "urn:flireo:openapi"
_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_MISSING = object()


def _ref_parts(ref: str) -> list[str]:
    """The unescaped parts of a local ``#/a/b`` reference."""
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in ref.lstrip("#").strip("/").split("/")]


def _pointer(*parts: str) -> str:
    """A URI fragment JSON pointer to ``parts`` (escaped per RFC 6901, then percent-quoted)."""
    escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
    return "#/" + "/".join(quote(p, safe="~") for p in escaped)


def _lenient_one_of(
    validator: Any, branches: list[Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, dict) and isinstance(instance, dict):
        tag = instance.get(str(discriminator.get("propertyName", "")))
        target = (discriminator.get("mapping") or {}).get(tag) if isinstance(tag, str) else None
        for index, branch in enumerate(branches):
            if target is not None and isinstance(branch, dict) and branch.get("$ref") == target:
                yield from validator.descend(instance, branch, schema_path=index)
                return
    errors: list[ValidationError] = []
    for index, branch in enumerate(branches):
        found = list(validator.descend(instance, branch, schema_path=index))
        if not found:
            return
        errors.extend(found)
    yield ValidationError("does not match any of the allowed shapes", context=errors)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")

FORMATS = FormatChecker(formats=())
"""The formats the fake checks (see the module docstring)."""


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


def _is_email(value: object) -> bool:
    return not isinstance(value, str) or _EMAIL.fullmatch(value) is not None


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


FORMATS.checks("date-time")(_is_date_time)
FORMATS.checks("email")(_is_email)
FORMATS.checks("uri")(_is_uri)

LenientValidator = validators.extend(Draft202012Validator, {"oneOf": _lenient_one_of})
"""Draft 2020-12 with the OpenAPI reading of ``oneOf`` described in the module docstring."""


@dataclass
class Route:
    """One operation of the spec: method, path template and operationId."""

    method: str
    template: str
    operation_id: str
    operation: dict[str, Any]
    param_names: tuple[str, ...]
    regex: re.Pattern[str]
    parameters: list[dict[str, Any]] = field(default_factory=list)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Path parameters (percent-decoded) when ``raw_path`` (still encoded) matches."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in zip(self.param_names, found.groups(), strict=True)}


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    pattern = ""
    for piece in re.split(r"(\{[^}/]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            names.append(piece[1:-1])
            pattern += "([^/]+)"  # one encoded segment: an id with "/" arrives as %2F
        else:
            pattern += re.escape(piece)
    return re.compile(pattern), tuple(names)


class SpecIndex:
    """Routes and validators derived from an OpenAPI 3.1 document."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, DRAFT202012.create_resource(dict(spec))
        )
        servers = spec.get("servers") or []
        base = urlsplit(servers[0]["url"]).path if servers and servers[0].get("url") else "/api/v1"
        self.base_path = "/" + base.strip("/") if base.strip("/") else ""
        self.routes: list[Route] = []
        for template, item in (spec.get("paths") or {}).items():
            shared = list(item.get("parameters") or [])
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                regex, names = _compile(template)
                params = self._merge_params(template, method, shared, operation.get("parameters") or [])
                self.routes.append(
                    Route(method.upper(), template, operation["operationId"], operation, names, regex, params)
                )
        # Literal paths before templated ones, so "/calls/outbound" never matches "/calls/{id}".
        self.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        self.by_id = {r.operation_id: r for r in self.routes}
        self._validators: dict[str, Any] = {}

    # -- routing --------------------------------------------------------------------------------

    def _merge_params(
        self, template: str, method: str, shared: list[Any], own: list[Any]
    ) -> list[dict[str, Any]]:
        """Path-level and operation-level parameters (the latter win), each with the JSON
        pointer of its schema under ``x-fake-schema-pointer``."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        sources = [(p, ["paths", template, "parameters", str(i)]) for i, p in enumerate(shared)]
        sources += [(p, ["paths", template, method, "parameters", str(i)]) for i, p in enumerate(own)]
        for param, location in sources:
            if isinstance(param, dict) and isinstance(param.get("$ref"), str):
                location = _ref_parts(param["$ref"])
            resolved = dict(self._deref(param))
            resolved["x-fake-schema-pointer"] = (
                _pointer(*location, "schema") if "schema" in resolved else None
            )
            merged[(resolved.get("in", ""), resolved.get("name", ""))] = resolved
        return list(merged.values())

    def _deref(self, node: Any) -> Any:
        """Follow local ``$ref`` pointers of non-schema objects (parameters, request bodies)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
            target: Any = self.spec
            for part in _ref_parts(node["$ref"]):
                target = target[part]
            node = target
            seen += 1
        return node

    def resolve(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route for a request path relative to the base (still percent-encoded), its
        path parameters, and the methods allowed on that path (for a 405)."""
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(raw_path)
            if params is None:
                continue
            if route.method == method:
                return route, params, allowed
            allowed.append(route.method)
        return None, {}, allowed

    # -- validators -----------------------------------------------------------------------------

    def _validator(self, pointer: str) -> Any:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = LenientValidator(
                {"$ref": SPEC_URI + pointer}, registry=self.registry, format_checker=FORMATS
            )
            self._validators[pointer] = validator
        return validator

    def request_body(self, route: Route) -> tuple[bool, str | None]:
        """Whether the operation requires a body, and the pointer to its JSON schema."""
        body = route.operation.get("requestBody")
        if not isinstance(body, dict):
            return False, None
        location = ["paths", route.template, route.method.lower(), "requestBody"]
        if isinstance(body.get("$ref"), str):
            location = _ref_parts(body["$ref"])
            body = self._deref(body)
        content = body.get("content") or {}
        media = next((m for m in content if m.split(";")[0].strip() == "application/json"), None)
        if media is None or "schema" not in content[media]:
            return bool(body.get("required")), None
        return bool(body.get("required")), _pointer(*location, "content", media, "schema")

    def validate_body(self, route: Route, body: Any) -> list[str]:
        """Problems of a request body, one message per problem naming the field path."""
        _, pointer = self.request_body(route)
        if pointer is None:
            return []
        return format_errors(self._validator(pointer).iter_errors(body), self)

    def response_pointer(self, route: Route, status: int) -> str | None:
        responses = route.operation.get("responses") or {}
        key = next(
            (
                k
                for k in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default")
                if k in responses
            ),
            None,
        )
        if key is None:
            return None
        response = responses[key]
        location = ["paths", route.template, route.method.lower(), "responses", key]
        if isinstance(response, dict) and "$ref" in response:
            ref = response["$ref"]
            location = _ref_parts(ref)
            response = self._deref(response)
        content = (response or {}).get("content") or {}
        media = next((m for m in content if m.split(";")[0].strip() == "application/json"), None)
        if media is None or "schema" not in content[media]:
            return None
        return _pointer(*location, "content", media, "schema")

    def documented_statuses(self, route: Route) -> set[str]:
        return set((route.operation.get("responses") or {}).keys())

    def validate_response(self, route: Route, status: int, body: Any) -> list[str]:
        """Problems of a response body against the schema documented for ``status``."""
        pointer = self.response_pointer(route, status)
        if pointer is None:
            return []
        return format_errors(self._validator(pointer).iter_errors(body), self)

    def validate_schema(self, name: str, value: Any, *, root: str = "body") -> list[str]:
        """Problems of ``value`` against the component schema ``name`` (for example what a
        webhook receiver answered), one message per problem naming the field path."""
        pointer = _pointer("components", "schemas", name)
        return format_errors(self._validator(pointer).iter_errors(value), self, root=root)

    def parse_query(self, route: Route, query: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        """Typed query parameters (per their schemas) and the problems found. Unknown
        parameters are ignored, as the API does."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for param in route.parameters:
            if param.get("in") != "query":
                continue
            name = param.get("name", "")
            schema = self._deref(param.get("schema") or {})
            raw = query.get(name, _MISSING)
            if raw is _MISSING:
                if param.get("required"):
                    problems.append(f"{name}: required query parameter is missing")
                continue
            value, problem = _coerce(str(raw), schema)
            if problem is not None:
                problems.append(f"{name}: {problem}")
                continue
            pointer = param.get("x-fake-schema-pointer")
            if pointer is not None:
                problems.extend(
                    f"{name}: {msg.split(': ', 1)[1]}" if msg.startswith("value: ") else f"{name}: {msg}"
                    for msg in format_errors(self._validator(pointer).iter_errors(value), self, root="value")
                )
            values[name] = value
        return values, problems


def _schema_types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if isinstance(kind, str):
        return [kind]
    return []


def _coerce(raw: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A query string value converted to the schema's type."""
    types = _schema_types(schema) or ["string"]
    if "integer" in types:
        try:
            return int(raw, 10), None
        except ValueError:
            return None, "must be an integer"
    if "number" in types:
        try:
            number = float(raw)
        except ValueError:
            return None, "must be a number"
        if not math.isfinite(number):
            return None, "must be a finite number"
        return number, None
    if "boolean" in types:
        if raw.lower() in ("true", "1"):
            return True, None
        if raw.lower() in ("false", "0"):
            return False, None
        return None, "must be true or false"
    return raw, None


# -- error messages ------------------------------------------------------------------------------


def _path_text(parts: Iterable[Any], root: str) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or root


def _join(parent: str, name: str, root: str) -> str:
    return name if parent == root else f"{parent}.{name}"


_FORMAT_WORDS = {
    "date-time": "an ISO 8601 date-time",
    "email": "an e-mail address",
    "uri": "an absolute URI (scheme:...)",
}
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _describe(error: ValidationError, root: str, index: SpecIndex | None) -> list[str]:
    path = _path_text(error.absolute_path, root)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "required":
        if not isinstance(instance, dict):
            return [f"{path}: must be an object"]
        return [
            f"{_join(path, str(name), root)}: required field is missing"
            for name in value
            if name not in instance
        ]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        extras = [k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)]
        return [f"{_join(path, str(k), root)}: unknown field" for k in extras] or [
            f"{path}: unexpected field"
        ]
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        return [f"{path}: must be " + " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)]
    if kind == "enum":
        return [f"{path}: must be one of " + ", ".join(str(v) for v in value)]
    if kind == "const":
        return [f"{path}: must be {value!r}"]
    if kind in ("oneOf", "anyOf"):
        return _describe_choice(error, path, root, index)
    simple = {
        "minimum": f"must be >= {value}",
        "maximum": f"must be <= {value}",
        "exclusiveMinimum": f"must be > {value}",
        "exclusiveMaximum": f"must be < {value}",
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"must be at most {value} characters long",
        "pattern": f"does not match the pattern {value}",
        "minItems": f"must have at least {value} items",
        "maxItems": f"must have at most {value} items",
        "uniqueItems": "must not contain duplicates",
        "minProperties": f"must have at least {value} fields",
        "maxProperties": f"must have at most {value} fields",
        "multipleOf": f"must be a multiple of {value}",
        "not": "is not allowed here",
        "format": "must be " + _FORMAT_WORDS.get(str(value), f"a valid {value}"),
    }
    if kind in simple:
        return [f"{path}: {simple[kind]}"]
    return [f"{path}: {error.message[:200]}"]


def _describe_choice(error: ValidationError, path: str, root: str, index: SpecIndex | None) -> list[str]:
    """A failed oneOf/anyOf: use the discriminator when there is one, else the best branch."""
    if not error.context:
        return [f"{path}: matches more than one of the allowed shapes"]
    discriminator = error.schema.get("discriminator") if isinstance(error.schema, dict) else None
    instance = error.instance
    if isinstance(discriminator, dict) and isinstance(instance, dict):
        prop = str(discriminator.get("propertyName", ""))
        mapping = discriminator.get("mapping") or {}
        tag = instance.get(prop)
        prop_path = _join(path, prop, root)
        if prop not in instance:
            return [f"{prop_path}: required field is missing"]
        if mapping and tag not in mapping:
            return [f"{prop_path}: must be one of " + ", ".join(str(k) for k in mapping)]
        branches = error.schema.get(error.validator) or []
        target = mapping.get(tag)
        for position, branch in enumerate(branches):
            if isinstance(branch, dict) and target is not None and branch.get("$ref") == target:
                chosen = [
                    e
                    for e in error.context
                    if e.relative_schema_path and e.relative_schema_path[0] == position
                ]
                if chosen:
                    return _unique(m for e in chosen for m in _describe(e, root, index))
    best = best_match(error.context)
    if best is None:
        return [f"{path}: does not match any of the allowed shapes"]
    return _describe(best, root, index)


def _unique(messages: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        seen.setdefault(message, None)
    return list(seen)


def format_errors(
    errors: Iterable[ValidationError], index: SpecIndex | None = None, *, root: str = "body"
) -> list[str]:
    """Readable messages, each starting with the dotted path of the field at fault:
    ``name: required field is missing``, ``llm_config.tools[0].name: must be a string``."""
    ordered = sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
    return _unique(m for e in ordered for m in _describe(e, root, index))
