"""The settings an operator may change from the browser, applied to ``organization.yaml`` text.

ruamel.yaml's composer gives the exact character span of every node of the file; an edit
replaces only the span of the edited value, or inserts the missing key where the model puts
it, so comments, key order, flow mappings and spacing elsewhere stay byte for byte. (A
ruamel round-trip *dump* would re-indent and re-wrap lines it did not change.) The result is
parsed again and must equal the original data with exactly the edited values changed, then the
whole file is validated by the project's loader: the messages of ``attic-iac validate``.

Which environment an edit changes is explicit: scope ``environment`` writes
``environments.<env>.overrides.<key>`` (only that environment changes), scope ``base`` writes
the base ``<key>`` (every environment without its own override of it).

There is no per-type ``limit`` in the config model: the runner's ``limit`` in config.toml is
its type's ``concurrent`` (stacks/runner_types.py), so editing ``concurrent`` edits both.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from config_model.loader import ConfigError, LoadedConfig, load_config_text, model_keys
from config_model.organization import OrganizationConfig
from config_model.runners import TYPE_DEFAULTS
from config_model.wiring import runner_tags

Value = bool | int | tuple[str, ...]
Kind = Literal["bool", "int", "tags"]
Scope = Literal["environment", "base"]
_Path = tuple[str, ...]
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_INT = re.compile(r"-?[0-9]{1,6}")


class EditError(ValueError):
    """An edit this module refuses: unknown field, wrong value type, or a file shape it cannot
    edit without touching more than the value (the operator edits the file by hand then)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EditableField:
    """One setting of the change form; ``key`` is its dotted path below the file's root."""

    key: str
    label: str
    kind: Kind
    runner_type: str | None = None


def _fields() -> tuple[EditableField, ...]:
    per_type: tuple[tuple[str, str, Kind], ...] = (
        ("enabled", "enabled", "bool"),
        ("concurrent", "concurrent jobs per manager (also the runner's limit)", "int"),
        ("replicas", "manager replicas", "int"),
        ("gitlab.tags", "job tags (comma-separated)", "tags"),
    )
    found = [
        EditableField(key=f"runners.types.{name}.{key}", label=label, kind=kind, runner_type=name)
        for name in TYPE_DEFAULTS
        for key, label, kind in per_type
    ]
    found.append(
        EditableField(key="attic.api.min_replicas", label="Attic API min replicas", kind="int")
    )
    found.append(
        EditableField(key="attic.api.max_replicas", label="Attic API max replicas", kind="int")
    )
    return tuple(found)


FIELDS: tuple[EditableField, ...] = _fields()
_BY_KEY = {f.key: f for f in FIELDS}


@dataclass(frozen=True, kw_only=True, slots=True)
class Edit:
    """Set the editable field ``key`` to ``value``."""

    key: str
    value: Value


@dataclass(frozen=True, kw_only=True, slots=True)
class EditResult:
    """The edited text, its diff, and the loader's verdict mapped to the edited fields."""

    original: str
    text: str
    diff: str
    written: Mapping[str, str] = field(default_factory=dict)
    field_problems: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    config: LoadedConfig | None = None

    @property
    def changed(self) -> bool:
        return self.text != self.original

    @property
    def valid(self) -> bool:
        return self.config is not None and not self.field_problems and not self.problems


def current_values(config: OrganizationConfig) -> dict[str, Value]:
    """Effective value of every editable field in one environment's resolved config."""
    values: dict[str, Value] = {}
    for name, spec in config.runners.types.items():
        prefix = f"runners.types.{name}"
        values[f"{prefix}.enabled"] = spec.enabled
        values[f"{prefix}.concurrent"] = spec.concurrent
        values[f"{prefix}.replicas"] = spec.replicas
        values[f"{prefix}.gitlab.tags"] = tuple(runner_tags(config, name))
    values["attic.api.min_replicas"] = config.attic.api.min_replicas
    values["attic.api.max_replicas"] = config.attic.api.max_replicas
    return values


def parse_form(
    form: Mapping[str, str], current: Mapping[str, Value]
) -> tuple[list[Edit], dict[str, str]]:
    """Edits for the submitted fields whose value differs from ``current``, and a message per
    field that does not parse. Fields not submitted stay as they are."""
    edits: list[Edit] = []
    errors: dict[str, str] = {}
    for spec in FIELDS:
        raw = form.get(spec.key)
        if raw is None:
            continue
        try:
            value = _parse(spec.kind, raw)
        except EditError as exc:
            errors[spec.key] = str(exc)
            continue
        if value != current.get(spec.key):
            edits.append(Edit(key=spec.key, value=value))
    return edits, errors


def _parse(kind: Kind, raw: str) -> Value:
    text = raw.strip()
    if kind == "bool":
        if text not in ("true", "false"):
            raise EditError("choose true or false")
        return text == "true"
    if kind == "int":
        if not _INT.fullmatch(text):
            raise EditError(f"must be a whole number (got {raw[:20]!r})")
        return int(text)
    tags = tuple(t.strip() for t in text.split(",") if t.strip())
    if any(not t.isprintable() for t in tags):
        raise EditError("tags may not contain control characters")
    return tags


def target_path(key: str, *, environment: str, scope: Scope) -> _Path:
    """Where in the file an edit of ``key`` is written."""
    parts = tuple(key.split("."))
    return ("environments", environment, "overrides", *parts) if scope == "environment" else parts


def apply_edits(
    text: str, *, path: Path, environment: str, scope: Scope, edits: Sequence[Edit]
) -> EditResult:
    """Apply ``edits`` for ``environment`` to ``text`` (read from ``path``) and validate the
    result as a whole. Raises :class:`EditError` for an edit it cannot make exactly."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or environment not in (data.get("environments") or {}):
        raise EditError(f"environment {environment!r} is not in {path}")
    # A fresh copy without shared (aliased) parts: an edit through an alias must show up.
    new, expected, written = text, _plain(data), {}
    for edit in edits:
        spec = _BY_KEY.get(edit.key)
        if spec is None:
            raise EditError(f"{edit.key}: not a field the dashboard may edit")
        _check_type(spec, edit.value)
        where = target_path(edit.key, environment=environment, scope=scope)
        new = _apply_one(new, where, edit.value)
        _set(expected, where, edit.value)
        written[edit.key] = ".".join(where)
    if yaml.safe_load(new) != _plain(expected):
        raise EditError("the edit would change more than the edited values; edit the file by hand")
    field_problems: dict[str, list[str]] = {}
    if scope == "base":
        overrides = data["environments"][environment].get("overrides") or {}
        for edit in edits:
            if _lookup(overrides, tuple(edit.key.split("."))):
                field_problems.setdefault(edit.key, []).append(
                    f"environments.{environment}.overrides sets {edit.key}, so a base edit does "
                    f"not change {environment}: edit this environment instead"
                )
    problems: list[str] = []
    config: LoadedConfig | None = None
    try:
        config = load_config_text(new, path)
    except ConfigError as exc:
        for line, key in zip(exc.lines, exc.keys, strict=True):
            owner = _owner(key, written)
            if owner is None:
                problems.append(line)
            else:
                field_problems.setdefault(owner, []).append(line)
    return EditResult(
        original=text,
        text=new,
        diff=unified_diff(text, new, str(path)),
        written=written,
        field_problems={k: tuple(v) for k, v in field_problems.items()},
        problems=tuple(problems),
        config=config,
    )


def unified_diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(lines)


def _owner(key: str, written: Mapping[str, str]) -> str | None:
    """The edited field a loader message is about: its key is the field or below it, in the
    base or where the edit was written."""
    for field_key, where in written.items():
        for candidate in (field_key, where):
            if key == candidate or key.startswith(candidate + "."):
                return field_key
    return None


def _check_type(spec: EditableField, value: Value) -> None:
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "tags": isinstance(value, tuple) and all(isinstance(t, str) for t in value),
    }[spec.kind]
    if not ok:
        raise EditError(f"{spec.key}: expected {spec.kind}, got {value!r}")


def _lookup(data: Any, path: _Path) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _set(data: dict[str, Any], path: _Path, value: Value) -> None:
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _plain(value: Any) -> Any:
    """``value`` rebuilt: lists for tuples, and no part shared by two places."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --- splicing: change the text of one value, nothing else ---------------------------------


def _compose(text: str) -> Node:
    node = YAML(typ="rt").compose(text)
    if not isinstance(node, MappingNode):
        raise EditError("the file is not a mapping")
    return node


def _apply_one(text: str, path: _Path, value: Value) -> str:
    node: Node = _compose(text)
    for depth, key in enumerate(path):
        if not isinstance(node, MappingNode):
            raise EditError(f"{'.'.join(path[:depth])}: is not a mapping in the file")
        pair = next(((k, v) for k, v in node.value if k.value == key), None)
        if pair is None:
            return _insert(text, node, path[:depth], path[depth:], value)
        key_node, value_node = pair
        if depth == len(path) - 1:
            return _replace(text, key_node, value_node, value)
        if _is_null(value_node):
            return _fill_null(text, key_node, value_node, _nest(path[depth + 1 :], value))
        node = value_node
    raise EditError("empty path")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and str(node.tag).endswith(":null")


def _nest(path: _Path, value: Value) -> Any:
    for part in reversed(path):
        value = {part: value}  # type: ignore[assignment]
    return value


def _replace(text: str, key_node: Node, node: Node, value: Value) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    if isinstance(node, ScalarNode):
        if _is_null(node) and start == end:  # "key:" with nothing after it
            colon = text.index(":", key_node.end_mark.index)
            return _splice(text, colon + 1, colon + 1, " " + _flow(value))
        if isinstance(value, tuple):
            raise EditError(f"{key_node.value}: holds a single value, expected a list")
        return _splice(text, start, end, _flow(value))
    if not isinstance(node, SequenceNode) or not isinstance(value, tuple):
        raise EditError(f"{key_node.value}: has a shape the dashboard does not edit")
    if node.flow_style or not node.value:
        return _splice(text, start, end, _flow(value))
    last = _last_line_end(text, node)
    if not value:
        colon = text.index(":", key_node.end_mark.index)
        return _splice(text, colon + 1, last, " []\n")
    indent = " " * node.start_mark.column
    lines = "".join(f"{indent}- {_scalar(tag)}\n" for tag in value)
    return _splice(text, _line_start(text, start), last, lines)


def _insert(text: str, mapping: MappingNode, parent: _Path, missing: _Path, value: Value) -> str:
    """Add ``missing[0]`` (holding the rest of ``missing``) to ``mapping`` before the first
    key the model orders after it, else after the last one."""
    key, nested = missing[0], _nest(missing[1:], value)
    order = _model_order(parent)
    later = next(
        (
            k
            for k, _ in mapping.value
            if key in order and k.value in order and order.index(k.value) > order.index(key)
        ),
        None,
    )
    item = f"{key}: {_flow(nested)}"
    if mapping.flow_style:
        if later is not None:
            return _splice(text, later.start_mark.index, later.start_mark.index, item + ", ")
        if mapping.value:
            end = mapping.value[-1][1].end_mark.index
            return _splice(text, end, end, ", " + item)
        brace = mapping.end_mark.index - 1
        return _splice(text, brace, brace, item)
    indent = mapping.value[0][0].start_mark.column
    lines = _block(key, nested, indent)
    if later is not None:
        at = _comments_above(text, _line_start(text, later.start_mark.index), indent)
    else:
        at = _last_line_end(text, mapping.value[-1][1])
        if at == len(text) and not text.endswith("\n"):
            lines = "\n" + lines
    return _splice(text, at, at, lines)


def _fill_null(text: str, key_node: Node, node: Node, nested: dict[str, Any]) -> str:
    """``key:`` (or ``key: null``) gets the mapping ``nested``."""
    if node.end_mark.index > node.start_mark.index:
        return _splice(text, node.start_mark.index, node.end_mark.index, _flow(nested))
    at = _line_end(text, key_node.start_mark.index)
    indent = key_node.start_mark.column + 2
    lines = "".join(_block(k, v, indent) for k, v in nested.items())
    if at == len(text) and not text.endswith("\n"):
        lines = "\n" + lines
    return _splice(text, at, at, lines)


def _model_order(parent: _Path) -> list[str]:
    """Key order of the model at ``parent``; an environment's overrides follow the root's."""
    if len(parent) >= 3 and parent[0] == "environments" and parent[2] == "overrides":
        parent = parent[3:]
    return model_keys(parent)


def _block(key: str, value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        inner = "".join(_block(k, v, indent + 2) for k, v in value.items())
        return f"{pad}{key}:\n{inner}"
    return f"{pad}{key}: {_flow(value)}\n"


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _scalar(value)


def _scalar(value: str) -> str:
    """A string as YAML reads it back unchanged: plain when safe, else double-quoted."""
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index just past the newline of the line holding ``index``."""
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _last_line_end(text: str, node: Node) -> int:
    """End of the last line with content of ``node`` (a block collection's own end mark lies
    at the next key, past blank and comment lines)."""
    while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    end = node.end_mark.index
    return _line_end(text, end - 1 if end > 0 else 0)


def _comments_above(text: str, line_start: int, indent: int) -> int:
    """Start of the comment lines (at ``indent``) directly above a key: they describe it."""
    at = line_start
    while at > 0:
        prev = _line_start(text, at - 1)
        line = text[prev : at - 1]
        if not line.lstrip().startswith("#") or len(line) - len(line.lstrip()) != indent:
            break
        at = prev
    return at
