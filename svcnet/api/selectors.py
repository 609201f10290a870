"""Label and field selectors, parsed and matched as kube-apiserver does (apimachinery `labels` and `fields`).

Theory of operation: `parse_label_selector` runs the same lexer → recursive-descent parser as
`labels.Parse` (tokens `!`, `=`, `==`, `!=`, `>`, `<`, `in`, `notin`, `(`, `)`, `,`, identifiers), checks every
key and value with kube's label syntax rules, and sorts the requirements by key. `selector_from_label_selector`
turns a `metav1.LabelSelector` dict into the same `LabelSelector`, like `LabelSelectorAsSelector`.
`parse_field_selector` follows `fields.ParseSelector` (`=`, `==`, `!=` with `\\,`, `\\=`, `\\\\` escapes); which
field labels a kind supports, and how they are read from an object, is the table `_FIELD_GETTERS`.

Invariants: everything here is pure and never mutates its inputs; every failure is a `SelectorError` whose
message is kube-apiserver's wording; `str()` of a selector renders kube's canonical form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "DNS1123_LABEL_FMT",
    "DNS1123_SUBDOMAIN_FMT",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "dns1123_subdomain_errors",
    "field_selector_matches",
    "is_dns1123_subdomain",
    "label_key_errors",
    "label_value_errors",
    "max_len_error",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "regex_error",
    "selector_from_label_selector",
    "selector_from_map",
    "supported_fields",
]


class SelectorError(ValueError):
    """A selector that kube-apiserver would reject; str() is its message."""


# ---- label syntax (apimachinery util/validation), shared with validation.py ----------------------------------

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                          "'.', and must start and end with an alphanumeric character")
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """kube's RegexError: `msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')`."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_subdomain(value: str) -> bool:
    return not dns1123_subdomain_errors(value)


def label_key_errors(key: str) -> list[str]:
    """IsQualifiedName: an optional DNS subdomain prefix and '/', then a name of at most 63 characters."""
    parts = key.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return ["a qualified name " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _go_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---- label selectors ---------------------------------------------------------------------------------------


class Operator(StrEnum):
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_RENDER_OP = {Operator.EQUALS: "=", Operator.DOUBLE_EQUALS: "==", Operator.NOT_EQUALS: "!=",
              Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        return self._compare(labels)

    def _compare(self, labels: dict[str, str]) -> bool:
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except (KeyError, ValueError, IndexError):
            return False
        return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {self.operator.value} ({values})"
        return f"{self.key}{_RENDER_OP[self.operator]}{values}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """AND of requirements, sorted by key. `matches_nothing` is kube's labels.Nothing() (a nil LabelSelector)."""

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.matches_nothing

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def new_requirement(key: str, op: Operator, values: list[str], path: str = "") -> Requirement:
    """labels.NewRequirement: checks key, value count and value syntax; raises the aggregated field errors."""
    key_path = f"{path}.key" if path else "key"
    values_path = f"{path}.values" if path else "values"
    errs: list[str] = []
    if msgs := label_key_errors(key):
        errs.append(f"{key_path}: Invalid value: {_go_quote(key)}: {'; '.join(msgs)}")
    errs.extend(_value_count_errors(op, values, values_path))
    for i, value in enumerate(values):
        if msgs := label_value_errors(value):
            errs.append(f"{values_path}[{i}][{key}]: Invalid value: {_go_quote(value)}: {'; '.join(msgs)}")
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(values))


def _value_count_errors(op: Operator, values: list[str], path: str) -> list[str]:
    rendered = "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        return [f"{path}: Invalid value: {rendered}: for 'in', 'notin' operators, values set can't be empty"]
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        return [f"{path}: Invalid value: {rendered}: exact-match compatibility requires one single value"]
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        return [f"{path}: Invalid value: {rendered}: values set must be empty for exists and does not exist"]
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            return [f"{path}: Invalid value: {rendered}: for 'Gt', 'Lt' operators, exactly one value is required"]
        if not re.fullmatch(r"[+-]?\d+", values[0]):
            return [f"{path}[0]: Invalid value: {_go_quote(values[0])}: for 'Gt', 'Lt' operators, the value must "
                    "be an integer"]
    return []


# Lexer: tokens are (kind, literal); kinds are the literal itself for operators/keywords, "id" and "end".
_SPECIAL = "=!(),><"
_WHITESPACE = " \t\r\n"
_SYMBOLS = (")", ",", "!", "==", "=", ">", "<", "!=", "(")


def _lex(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= len(text):
            tokens.append(("end", ""))
            return tokens
        if text[pos] in _SPECIAL:
            token, pos = _lex_symbol(text, pos)
        else:
            start = pos
            while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            token = (word, word) if word in ("in", "notin") else ("id", word)
        tokens.append(token)
        if token[0] == "error":
            tokens.append(("end", ""))
            return tokens


def _lex_symbol(text: str, pos: int) -> tuple[tuple[str, str], int]:
    """Longest run of special characters that still forms a known symbol (kube's scanSpecialSymbol)."""
    buffer, last, last_pos = "", "", pos
    while pos < len(text) and text[pos] in _SPECIAL:
        buffer += text[pos]
        pos += 1
        if buffer in _SYMBOLS:
            last, last_pos = buffer, pos
        elif last:
            break
    if not last:
        return ("error", f"error expected: keyword found '{buffer}'"), pos
    return (last, last), last_pos


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as_values(self.tokens[self.pos], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return self._as_values(token, values)

    @staticmethod
    def _as_values(token: tuple[str, str], values: bool) -> tuple[str, str]:
        if values and token[0] in ("in", "notin"):
            return ("id", token[1])
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == "end":
                return requirements
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self.take()
            if kind == "end":
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, op = self.key_and_operator()
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return new_requirement(key, op, [])
        op = self.operator()
        values = self.value_set() if op in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        return new_requirement(key, op, sorted(values))

    def key_and_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        kind, literal = self.take()
        if kind == "!":
            op = Operator.DOES_NOT_EXIST
            kind, literal = self.take()
        if kind != "id":
            raise SelectorError(f"found '{literal}', expected: identifier")
        if msgs := label_key_errors(literal):
            raise SelectorError(f"<nil>: Invalid value: {_go_quote(literal)}: {'; '.join(msgs)}")
        if self.peek()[0] in ("end", ",") and op is None:
            op = Operator.EXISTS
        return literal, op

    def operator(self) -> Operator:
        kind, literal = self.take(values=False)
        ops = {"in": Operator.IN, "notin": Operator.NOT_IN, "=": Operator.EQUALS, "==": Operator.DOUBLE_EQUALS,
               "!=": Operator.NOT_EQUALS, ">": Operator.GREATER_THAN, "<": Operator.LESS_THAN}
        if kind not in ops:
            raise SelectorError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        return ops[kind]

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in ("id", ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == "id":
                values.add(literal)
                next_kind, next_literal = self.peek()
                if next_kind == ")":
                    return values
                if next_kind != ",":
                    raise SelectorError(f"found '{next_literal}', expected: ',' or ')'")
            elif kind == ",":
                next_kind = self.peek()[0]
                if not values or next_kind in (")", ","):
                    values.add("")
                if next_kind == ")":
                    return values
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in ("end", ","):
            return {""}
        kind, literal = self.take()
        if kind == "id":
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda r: r.key))


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse: `a=b,c!=d,e in (f,g),!h,i`; the empty string selects everything."""
    return LabelSelector(_sorted(_Parser(text).parse()))


def selector_from_map(labels: dict[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: equality on every pair; an empty or missing map selects everything."""
    return LabelSelector(_sorted([Requirement(k, Operator.EQUALS, (str(v),)) for k, v in (labels or {}).items()]))


_EXPRESSION_OPS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
                   "DoesNotExist": Operator.DOES_NOT_EXIST}


def selector_from_label_selector(selector: dict[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` selects everything."""
    if selector is None:
        return LabelSelector(matches_nothing=True)
    requirements: list[Requirement] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append(new_requirement(key, Operator.EQUALS, [str(value)]))
    for expr in selector.get("matchExpressions") or []:
        op = _EXPRESSION_OPS.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"{_go_quote(str(expr.get('operator', '')))} is not a valid label selector operator")
        requirements.append(new_requirement(expr.get("key", ""), op, [str(v) for v in expr.get("values") or []]))
    return LabelSelector(_sorted(requirements))


# ---- field selectors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    operator: str  # "=", "==" or "!="
    value: str

    def matches(self, fields: dict[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.operator == "!=" else equal

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        op = "!=" if self.operator == "!=" else "="
        return f"{self.field}{op}{escaped}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: dict[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector: comma-separated `field=value`, `field==value`, `field!=value` terms."""
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = split
        requirements.append(FieldRequirement(field, op, _unescape(value)))
    return FieldSelector(tuple(requirements))


def _get(obj: dict[str, Any], *path: str) -> Any:
    current: Any = obj
    for part in path:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _text(*path: str) -> Callable[[dict[str, Any]], str]:
    def read(obj: dict[str, Any]) -> str:
        value = _get(obj, *path)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)
    return read


def _flag(*path: str) -> Callable[[dict[str, Any]], str]:
    return lambda obj: "true" if _get(obj, *path) else "false"


def _count(*path: str) -> Callable[[dict[str, Any]], str]:
    return lambda obj: str(_get(obj, *path) or 0)


def _pod_ip(obj: dict[str, Any]) -> str:
    ips = _get(obj, "status", "podIPs") or []
    if ips and isinstance(ips[0], dict):
        return str(ips[0].get("ip", ""))
    return _text("status", "podIP")(obj)


_META = {"metadata.name": _text("metadata", "name"), "metadata.namespace": _text("metadata", "namespace")}
_NAME_ONLY = {"metadata.name": _text("metadata", "name")}
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

_FIELD_GETTERS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "Pod": {**_META,
            "spec.nodeName": _text("spec", "nodeName"),
            "spec.restartPolicy": _text("spec", "restartPolicy"),
            "spec.schedulerName": _text("spec", "schedulerName"),
            "spec.serviceAccountName": _text("spec", "serviceAccountName"),
            "spec.hostNetwork": _flag("spec", "hostNetwork"),
            "status.phase": _text("status", "phase"),
            "status.podIP": _pod_ip,
            "status.nominatedNodeName": _text("status", "nominatedNodeName")},
    "Event": {**_META,
              **{f"involvedObject.{f}": _text("involvedObject", f) for f in _INVOLVED},
              "reason": _text("reason"),
              "reportingComponent": _text("reportingComponent"),
              "source": _text("source", "component"),
              "type": _text("type")},
    "Secret": {**_META, "type": _text("type")},
    "Node": {**_NAME_ONLY, "spec.unschedulable": _flag("spec", "unschedulable")},
    "Namespace": {**_NAME_ONLY, "status.phase": _text("status", "phase")},
    "ReplicaSet": {**_META, "status.replicas": _count("status", "replicas")},
    "ReplicationController": {**_META, "status.replicas": _count("status", "replicas")},
    "Service": {**_META, "spec.clusterIP": _text("spec", "clusterIP"), "spec.type": _text("spec", "type")},
}


def supported_fields(kind: str) -> tuple[str, ...]:
    """The field labels `kind` can be selected by, in kube-apiserver's table order."""
    return tuple(_FIELD_GETTERS.get(kind, _META))


def field_selector_matches(selector: FieldSelector, kind: str, obj: dict[str, Any]) -> bool:
    """Whether `obj` (of `kind`) satisfies `selector`; an unsupported field label raises SelectorError."""
    getters = _FIELD_GETTERS.get(kind, _META)
    for requirement in selector.requirements:
        if requirement.field not in getters:
            raise SelectorError(f"field label not supported: {requirement.field}")
    fields = {r.field: getters[r.field](obj) for r in selector.requirements}
    return selector.matches(fields)
