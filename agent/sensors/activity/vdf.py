"""Valve's text KeyValues ("VDF"), as Steam writes ``registry.vdf``: just enough to read it safely.

Quoted and bare tokens, the C-style escapes Steam writes, nested braces, ``//`` comments and
``[$WIN32]``-style conditions (skipped). Keys compare case-insensitively, as in Valve's own reader;
a key that appears twice has its blocks merged, otherwise the later value wins. The PyPI package
``vdf`` does the same but is unmaintained since 2022, and this is all we need of it.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from sparecycles.agent.sensors.activity.errors import VdfSyntaxError

VdfValue: TypeAlias = "str | dict[str, VdfValue]"
VdfObject: TypeAlias = "dict[str, VdfValue]"

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>//[^\n]*)
    | (?P<open>\{)
    | (?P<close>\})
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<condition>\[[^\]\n]*\])
    | (?P<bare>[^\s{}"\[\]]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "v": "\v", "b": "\b", "r": "\r", "f": "\f", "a": "\a"}
_ESCAPES.update({c: c for c in "\\\"'?"})


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) for every token: "open", "close" or "string"; conditions are dropped."""
    tokens: list[tuple[str, str, int]] = []
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            what = "an unterminated quoted string" if text[position] == '"' else repr(text[position])
            raise VdfSyntaxError(f"line {line}: {what}")
        kind = match.lastgroup or ""
        if kind in ("open", "close"):
            tokens.append((kind, match.group(), line))
        elif kind == "quoted":
            tokens.append(("string", _unescape(match.group("quoted")), line))
        elif kind == "bare":
            tokens.append(("string", match.group(), line))
        line += match.group().count("\n")
        position = match.end()
    return tokens


def _put(target: VdfObject, index: dict[str, str], key: str, value: VdfValue) -> None:
    """Store ``key`` case-insensitively: blocks under the same key merge, a later string wins."""
    folded = key.casefold()
    existing_key = index.get(folded)
    if existing_key is not None:
        existing = target[existing_key]
        if isinstance(existing, dict) and isinstance(value, dict):
            for inner_key, inner_value in value.items():
                _put(existing, {k.casefold(): k for k in existing}, inner_key, inner_value)
            return
        del target[existing_key]
    target[key] = value
    index[folded] = key


def parse_vdf(text: str) -> VdfObject:
    """Parse KeyValues text into nested dicts of strings; raises ``VdfSyntaxError`` with the line."""
    tokens = _tokens(text.removeprefix("\ufeff"))
    root: VdfObject = {}
    stack: list[tuple[VdfObject, dict[str, str]]] = [(root, {})]
    position = 0
    while position < len(tokens):
        kind, value, line = tokens[position]
        if kind == "close":
            if len(stack) == 1:
                raise VdfSyntaxError(f"line {line}: '}}' without a matching '{{'")
            stack.pop()
            position += 1
            continue
        if kind == "open":
            raise VdfSyntaxError(f"line {line}: '{{' where a key was expected")
        if position + 1 >= len(tokens):
            raise VdfSyntaxError(f"line {line}: key {value!r} has no value")
        next_kind, next_value, next_line = tokens[position + 1]
        target, index = stack[-1]
        if next_kind == "string":
            _put(target, index, value, next_value)
        elif next_kind == "open":
            block: VdfObject = {}
            _put(target, index, value, block)
            folded = value.casefold()
            stored = target[index[folded]]
            # A repeated key merged into the earlier block: keep filling that one.
            child = stored if isinstance(stored, dict) else block
            stack.append((child, {k.casefold(): k for k in child}))
        else:
            raise VdfSyntaxError(f"line {next_line}: key {value!r} has no value")
        position += 2
    if len(stack) > 1:
        raise VdfSyntaxError("the file ends inside a block (a '}' is missing)")
    return root


def vdf_get(node: VdfValue | None, *path: str) -> VdfValue | None:
    """Follow ``path`` from ``node``, matching keys case-insensitively; ``None`` where it stops."""
    for key in path:
        if not isinstance(node, dict):
            return None
        found = node.get(key)
        if found is None:
            folded = key.casefold()
            found = next((v for k, v in node.items() if k.casefold() == folded), None)
        node = found
    return node
