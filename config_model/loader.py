"""Find, parse and validate the config file; report every problem at once, one line each.

Lines read ``path.to.key: what is wrong (got <value>; allowed ...) [file:line]``. Nothing here
imports cdktf, so a bad config fails fast.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config_model.base import deep_merge
from config_model.environment_rules import environment_findings, shared_archive_problems
from config_model.organization import Environment, OrganizationConfig
from config_model.rules import cross_field_problems

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
USER_CONFIG = CONFIG_DIR / "organization.yaml"
EXAMPLE_CONFIG = CONFIG_DIR / "organization.example.yaml"
CONFIG_ENV_VAR = "ATTIC_IAC_CONFIG"

Path_ = tuple[str | int, ...]
_NO_VALUE = object()
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


class ConfigError(Exception):
    """The config cannot be used; ``lines`` holds one message per problem and ``keys`` the
    dotted key of each (empty when unknown), so a form can show a message beside its field."""

    def __init__(self, lines: list[str], keys: list[str] | None = None) -> None:
        self.lines = lines
        self.keys = keys if keys is not None else [""] * len(lines)
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path_
    message: str
    value: Any = _NO_VALUE
    allowed: str = ""
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class ResolvedEnvironment:
    """One environment with the base config and its overrides merged."""

    name: str
    settings: Environment
    config: OrganizationConfig


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    path: Path
    base: OrganizationConfig
    environments: Mapping[str, ResolvedEnvironment]
    # Risks the user accepted by default (e.g. backups beside the cache), one line each.
    warnings: tuple[str, ...] = ()


def resolve_config_path(cli_path: str | None = None) -> tuple[Path, str | None]:
    """Pick the config file: ``--config``, then ``$ATTIC_IAC_CONFIG``, then the user's file,
    then the example. Returns the path and a notice saying why it was chosen."""
    if cli_path:
        return Path(cli_path), None
    if env_path := os.environ.get(CONFIG_ENV_VAR):
        return Path(env_path), f"using {env_path} (from ${CONFIG_ENV_VAR})"
    if USER_CONFIG.exists():
        return USER_CONFIG, f"using {_display(USER_CONFIG)}"
    return EXAMPLE_CONFIG, (
        f"using {_display(EXAMPLE_CONFIG)} ({_display(USER_CONFIG)} not found; copy the "
        "example there to deploy your own organization)"
    )


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_config(path: Path) -> LoadedConfig:
    """Parse and validate ``path``; raise :class:`ConfigError` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror})"]) from None
    return load_config_text(text, path)


def load_config_text(text: str, path: Path) -> LoadedConfig:
    """Parse and validate config ``text`` read from ``path`` (which names it in messages), for
    a config that is not a local file, such as one fetched from GitLab or being edited."""
    data, lines, problems = _parse_yaml(text)
    if not problems and not isinstance(data, dict):
        problems.append(
            Problem(
                (),
                "the file must be a mapping with organization, gitlab and environments",
                data if data is not None else "an empty file",
            )
        )
    base: OrganizationConfig | None = None
    merged: dict[str, OrganizationConfig] = {}
    warnings: list[str] = []
    if not problems:
        base, problems = _validate(data)
        problems += _environment_problems(data, problems, merged, warnings)
    if problems or base is None:
        raise ConfigError(
            [_format(p, lines, str(path)) for p in problems],
            [".".join(str(part) for part in p.path) for p in problems],
        )
    return LoadedConfig(
        path=path,
        base=base,
        environments={
            name: ResolvedEnvironment(name=name, settings=env, config=merged[name])
            for name, env in base.environments.items()
        },
        warnings=tuple(warnings),
    )


def _parse_yaml(text: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """Safe-load YAML, recording the line of every key and rejecting duplicate keys."""
    lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, problems

        def walk(node: yaml.Node, path: Path_) -> Any:
            lines.setdefault(path, node.start_mark.line + 1)
            if isinstance(node, yaml.MappingNode):
                loader.flatten_mapping(node)
                result: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = loader.construct_object(key_node, deep=True)
                    child = (*path, str(key))
                    if key in result:
                        problems.append(
                            Problem(
                                child,
                                f"duplicate key (first defined on line {lines[child]})",
                                line=key_node.start_mark.line + 1,
                            )
                        )
                        continue
                    lines[child] = key_node.start_mark.line + 1
                    result[key] = walk(value_node, child)
                return result
            if isinstance(node, yaml.SequenceNode):
                return [walk(item, (*path, i)) for i, item in enumerate(node.value)]
            return loader.construct_object(node, deep=True)

        return walk(node, ()), lines, problems
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        problem = Problem(
            (),
            f"YAML syntax error: {reason}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        return None, lines, [problem]
    finally:
        loader.dispose()


def _validate(data: Any) -> tuple[OrganizationConfig | None, list[Problem]]:
    try:
        config = OrganizationConfig.model_validate(data)
    except ValidationError as exc:
        return None, [_from_pydantic(err) for err in exc.errors(include_url=False)]
    return config, [Problem(path, msg, value) for path, msg, value in cross_field_problems(config)]


def _environment_problems(
    data: dict[str, Any],
    base_problems: list[Problem],
    merged: dict[str, OrganizationConfig],
    warnings: list[str],
) -> list[Problem]:
    """Validate base + overrides of each environment; report only what the overrides add, then
    the rules that need the environment itself or compare environments."""
    environments = data.get("environments")
    if not isinstance(environments, dict):
        return []
    seen = {(p.path, p.message) for p in base_problems}
    problems: list[Problem] = []
    overrides_of: dict[str, dict[str, Any]] = {}
    for name, env in environments.items():
        overrides = env.get("overrides", {}) if isinstance(env, dict) else {}
        if not isinstance(overrides, dict):
            continue
        if "environments" in overrides:
            problems.append(
                Problem(
                    ("environments", str(name), "overrides", "environments"),
                    "overrides cannot redefine environments",
                )
            )
            continue
        overrides_of[str(name)] = overrides
        config, env_problems = _validate(deep_merge(data, overrides))
        if config is not None and not env_problems:
            merged[str(name)] = config
            found, warned = environment_findings(str(name), config)
            env_problems = [Problem(path, msg, value) for path, msg, value in found]
            warnings += warned
        problems += [
            _in_environment(p, str(name), overrides)
            for p in env_problems
            if (p.path, p.message) not in seen
        ]
    for name, found_problems in shared_archive_problems(merged).items():
        problems += [
            _in_environment(Problem(path, msg, value), name, overrides_of[name])
            for path, msg, value in found_problems
        ]
    return problems


def _in_environment(problem: Problem, name: str, overrides: Mapping[str, Any]) -> Problem:
    """A problem of environment ``name``: at its override if the override set the key, else at
    the base key with the environment named."""
    if _overridden(overrides, problem.path):
        path: Path_ = ("environments", name, "overrides", *problem.path)
        return Problem(path, problem.message, problem.value, problem.allowed)
    message = f"{problem.message} (in environment '{name}')"
    return Problem(problem.path, message, problem.value, problem.allowed)


def _overridden(overrides: Mapping[str, Any], path: Path_) -> bool:
    node: Any = overrides
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _from_pydantic(err: Mapping[str, Any]) -> Problem:
    loc: Path_ = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input", _NO_VALUE)
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return Problem(
            loc,
            "invalid name: use lowercase letters, digits and '-', starting with a letter",
            str(loc[-1]) if loc else value,
        )
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        return Problem(loc, "unknown key", _NO_VALUE, allowed)
    if kind == "missing":
        return Problem(loc, "required key is missing")
    if kind == "literal_error":
        return Problem(loc, "not an allowed value", value, ctx.get("expected", ""))
    if kind == "string_pattern_mismatch":
        return Problem(loc, "has the wrong format", value, f"values matching {ctx['pattern']}")
    message = err["msg"].removeprefix("Value error, ")
    return Problem(loc, message[:1].lower() + message[1:], value)


def _allowed_keys(loc: Path_) -> list[str]:
    return sorted(model_keys(loc))


def model_keys(loc: Path_) -> list[str]:
    """Field names of the model that owns ``loc``, in the model's order (empty when ``loc``
    is not a model, e.g. a free-form mapping)."""
    model: Any = OrganizationConfig
    for part in loc:
        fields = model.model_fields if _is_model(model) else {}
        if part in fields:
            model = _unwrap(fields[part].annotation)
        elif typing.get_origin(model) is dict:
            model = _unwrap(typing.get_args(model)[1])
        else:
            return []
    return list(model.model_fields) if _is_model(model) else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) in (typing.Annotated, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0]
    return tp


def _format(problem: Problem, lines: Mapping[Path_, int], filename: str) -> str:
    key = ".".join(str(p) for p in problem.path) or "<file>"
    details = []
    if problem.value is not _NO_VALUE:
        details.append(f"got {_show(problem.value)}")
    if problem.allowed:
        details.append(f"allowed: {problem.allowed}")
    text = f"{key}: {problem.message}"
    if details:
        text += f" ({'; '.join(details)})"
    line = problem.line or next(
        (
            lines[problem.path[:n]]
            for n in range(len(problem.path), 0, -1)
            if problem.path[:n] in lines
        ),
        None,
    )
    where = f"{filename}:{line}" if line else filename
    if line and problem.column:
        where += f":{problem.column}"
    return f"{text} [{where}]"


def _show(value: Any) -> str:
    if value is None:
        return "nothing (not set)"
    if isinstance(value, str):
        value = _CREDENTIALS.sub(r"\1***@", value)  # never echo a password from a URL
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
