"""``attic-iac``: synthesize, validate the config, print its schema, list stacks, run OpenTofu
on them, check the deployed environments' health, mint and inspect Attic tokens, serve the
runner dashboard."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from config_model.loader import ConfigError, LoadedConfig, load_config, resolve_config_path
from config_model.rules import config_warnings

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 2 on bad input, with one line per problem and no traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tofu"]:
        # Its own parser: it needs no config and no third-party package (CI runs it as
        # ``python3 -m iac_tools.tofu`` in the OpenTofu image).
        from iac_tools import tofu

        return tofu.main(argv[1:])
    if argv[:1] == ["dashboard"]:
        # Its own parser and settings (DASHBOARD_* variables); imported only here so the
        # other commands never load the web stack.
        return _dashboard(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        outcome = "nothing was synthesized" if args.command == "synth" else "nothing was done"
        print(f"{len(exc.lines)} problem(s); {outcome}.", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $ATTIC_IAC_CONFIG, config/organization.yaml, "
        "else config/organization.example.yaml)",
    )
    parser = argparse.ArgumentParser(prog="attic-iac", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser(
        "synth", parents=[common], help="synthesize every stack (or those of --env / --stack)"
    )
    synth.add_argument(
        "--outdir", type=Path, help="output folder (default: $CDKTF_OUTDIR or cdktf.out)"
    )
    only = synth.add_mutually_exclusive_group()
    only.add_argument("--env", help="only the stacks of this environment")
    only.add_argument(
        "--stack",
        action="append",
        metavar="NAME",
        help="only this stack (repeat for more); the output holds just these, each exactly "
        "as a full synth writes it",
    )
    synth.set_defaults(handler=_synth)

    sub.add_parser("validate", parents=[common], help="check the config and exit").set_defaults(
        handler=_validate
    )
    sub.add_parser("schema", help="print the config's JSON Schema").set_defaults(handler=_schema)

    stacks = sub.add_parser("stacks", parents=[common], help="list stacks in apply order")
    stacks.add_argument("--env", help="only this environment")
    stacks.set_defaults(handler=_stacks)

    from iac_tools.health import DEFAULT_TIMEOUT, TOKEN_ENV

    health = sub.add_parser(
        "health",
        parents=[common],
        help="check each environment's Attic endpoint and runner managers",
        description="GET / and each public cache's nix-cache-info per environment, then, "
        f"when ${TOKEN_ENV} is set (scope read_api), the runners this config creates and "
        "their managers in GitLab. One line per check; exit 0 all good, 1 on any failure "
        "(one 'error:' line each on stderr), 2 on bad input.",
    )
    health.add_argument("--env", help="only this environment")
    health.add_argument(
        "--attic-url",
        metavar="URL",
        help="reach atticd here instead of its public URL, e.g. http://127.0.0.1:8080 after "
        "'kubectl -n attic port-forward svc/attic 8080:80' (needs --env)",
    )
    health.add_argument(
        "--gitlab-url", metavar="URL", help="GitLab for the runner check (default: gitlab.url)"
    )
    health.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per request (default: {DEFAULT_TIMEOUT:g})",
    )
    health.set_defaults(handler=_health)

    sub.add_parser(
        "tofu",
        add_help=False,
        help="run OpenTofu on synthesized stacks with GitLab state (attic-iac tofu --help)",
    )
    sub.add_parser(
        "dashboard",
        add_help=False,
        help="serve the runner dashboard; --demo runs it on fakes (attic-iac dashboard --help)",
    )
    _add_token_commands(sub)
    return parser


def _dashboard(argv: list[str]) -> int:
    try:
        from dashboard import main as dashboard_main
    except ImportError as exc:
        print(
            f"error: the dashboard needs its libraries ({exc.name} is missing): "
            "pip install 'attic-iac[dashboard]'",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return dashboard_main.main(argv)


def _load(args: argparse.Namespace) -> LoadedConfig:
    path, notice = resolve_config_path(args.config)
    if notice:
        print(notice, file=sys.stderr)
    config = load_config(path)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return config


def _synth(args: argparse.Namespace) -> int:
    config = _load(args)  # before anything imports jsii: bad configs fail fast
    only = _selected_stacks(config, args.env, args.stack)
    for env_name, env in config.environments.items():
        for warning in config_warnings(env.config):
            print(f"warning: {env_name}: {warning}", file=sys.stderr)
    from stacks import jsii_env

    jsii_env.prepare()  # before cdktf loads: jsii picks its Node.js when it first starts
    from constructs_lib.validation import PropsError
    from stacks.synth import default_outdir, synthesize

    outdir = args.outdir or default_outdir()
    try:
        summaries = synthesize(config, outdir, only)
    except PropsError as exc:
        for problem in exc.problems:
            print(f"error: {exc.construct}: {problem}", file=sys.stderr)
        print("nothing was synthesized; the output folder is unchanged.", file=sys.stderr)
        return EXIT_BAD_INPUT
    for summary in summaries:
        print(f"{summary.stack}: {summary.resources} resources")
    print(f"synthesized {len(summaries)} stacks into {outdir}")
    return 0


def _selected_stacks(
    config: LoadedConfig, env: str | None, stacks: list[str] | None
) -> list[str] | None:
    """The stack ids ``--env`` or ``--stack`` ask for (None: all); ConfigError on a name the
    config does not have."""
    from stacks.app import apply_order

    if env is not None:
        _check_env(config, env)
        return apply_order(config, env)
    if stacks is not None:
        known_stacks = apply_order(config)
        unknown = [name for name in stacks if name not in known_stacks]
        if unknown:
            allowed = ", ".join(known_stacks)
            raise ConfigError(
                [f"--stack: unknown stack (got {name!r}; allowed: {allowed})" for name in unknown]
            )
        return [name for name in known_stacks if name in stacks]
    return None


def _check_env(config: LoadedConfig, env: str) -> None:
    """ConfigError when ``--env`` names an environment the config does not have."""
    if env not in config.environments:
        known = ", ".join(config.environments)
        raise ConfigError([f"--env: unknown environment (got {env!r}; allowed: {known})"])


def _validate(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"{config.path}: valid ({len(config.environments)} environments)")
    return 0


def _schema(_: argparse.Namespace) -> int:
    from config_model.schema import schema_json

    print(schema_json())
    return 0


def _stacks(args: argparse.Namespace) -> int:
    from stacks.app import apply_order

    config = _load(args)
    if args.env:
        _check_env(config, args.env)
    for name in apply_order(config, args.env):
        print(name)
    return 0


def _health(args: argparse.Namespace) -> int:
    import os

    from iac_tools.health import TOKEN_ENV, HealthOptions, run_health

    config = _load(args)
    options = HealthOptions(
        env=args.env,
        attic_url=args.attic_url,
        gitlab_url=args.gitlab_url,
        timeout=args.timeout,
        token=os.environ.get(TOKEN_ENV) or None,
    )
    return run_health(config, options)


_KEY_HELP = (
    "file with atticd's token key: a PEM (private key signs, public key only verifies) or the "
    "same base64 text as atticd's variable (default: $ATTIC_SERVER_TOKEN_RS256_PUBKEY_BASE64, "
    "then $ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64, then $ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64, "
    "as atticd reads them)"
)


def _add_token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``token mint`` / ``token inspect``: no config file, no cdktf; only the key is needed."""
    from upstream_formats.attic_tokens import PERMISSION_NAMES

    token = sub.add_parser("token", help="mint or inspect Attic tokens offline")
    commands = token.add_subparsers(dest="token_command", required=True)

    mint = commands.add_parser(
        "mint",
        help="mint a token like 'atticadm make-token'; prints only the token",
        description="Mint a token the way 'atticadm make-token' does, with nbf backdated "
        "60 s for clock skew. Patterns may use '*'; atticd uses the exact name, else the "
        "first matching wildcard entry, without merging.",
    )
    mint.add_argument("--sub", required=True, help="the subject (recorded as uploader)")
    mint.add_argument(
        "--validity", required=True, metavar="DURATION", help="e.g. '30 days', '1y', '12h'"
    )
    for name in PERMISSION_NAMES:
        mint.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action="append",
            default=[],
            metavar="PATTERN",
            help=f"grant {name.replace('_', ' ')} on caches matching PATTERN (repeatable)",
        )
    mint.add_argument("--issuer", help="iss claim, for servers with token-bound-issuer")
    mint.add_argument(
        "--audience",
        action="append",
        default=[],
        help="aud claim, for servers with token-bound-audiences (repeatable)",
    )
    mint.add_argument("--key-file", metavar="PATH", help=_KEY_HELP)
    mint.add_argument(
        "--dump-claims",
        action="store_true",
        help="print the unsigned claims JSON instead of a token; reads no key",
    )
    mint.set_defaults(handler=_token_mint)

    inspect = commands.add_parser(
        "inspect",
        help="verify a token as atticd would and show its claims (exit 1 if invalid)",
        description="Verify a token with atticd's key and show what atticd would grant. "
        "Exit 0 if valid, 1 if atticd would ignore it, 2 on bad input.",
    )
    inspect.add_argument("token", metavar="TOKEN", help="the token, or '-' to read it from stdin")
    inspect.add_argument("--cache", metavar="NAME", help="show the permissions on this cache")
    inspect.add_argument("--issuer", help="the server's token-bound-issuer, if set")
    inspect.add_argument(
        "--audience",
        action="append",
        default=[],
        help="the server's token-bound-audiences, if set (repeatable)",
    )
    inspect.add_argument("--key-file", metavar="PATH", help=_KEY_HELP)
    inspect.set_defaults(handler=_token_inspect)


def _report(problems: Sequence[str], outcome: str) -> int:
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    print(f"{len(problems)} problem(s); {outcome}.", file=sys.stderr)
    return EXIT_BAD_INPUT


def _token_mint(args: argparse.Namespace) -> int:
    import time

    from upstream_formats.attic_token_keys import (
        TokenError,
        TokenKey,
        load_key,
        require_signing_key,
    )
    from upstream_formats.attic_tokens import PERMISSION_NAMES, build_claims, encode
    from upstream_formats.humantime import parse_duration

    problems: list[str] = []
    validity: float | None = None
    try:
        validity = parse_duration(args.validity)
    except ValueError as exc:
        problems.append(f"--validity: {exc}")
    claims: dict[str, object] = {}
    try:
        claims = build_claims(
            sub=args.sub,
            # with an unparsable --validity, still check every other flag
            validity=1 if validity is None else validity,
            now=time.time(),
            grants={name: getattr(args, name) for name in PERMISSION_NAMES},
            issuer=args.issuer,
            audiences=args.audience,
        )
    except TokenError as exc:
        problems.extend(exc.lines)
    key: TokenKey | None = None
    if not args.dump_claims:
        try:
            key = load_key(args.key_file)
            require_signing_key(key)
        except TokenError as exc:
            problems.extend(exc.lines)
    if problems:
        return _report(problems, "no token was minted")
    if not any(getattr(args, name) for name in PERMISSION_NAMES):
        print(
            "warning: the token grants nothing (no --pull, --push, ...); atticd accepts it, "
            "but it is no better than anonymous access",
            file=sys.stderr,
        )
    if key is None:
        print(json.dumps(claims, separators=(",", ":")))
        return 0
    try:
        token = encode(claims, key)
    except TokenError as exc:
        return _report(exc.lines, "no token was minted")
    print(token)
    return 0


def _token_inspect(args: argparse.Namespace) -> int:
    import time

    from upstream_formats.attic_token_inspect import check_cache_name, inspect
    from upstream_formats.attic_token_keys import TokenError, TokenKey, load_key

    problems: list[str] = []
    token = sys.stdin.read() if args.token == "-" else args.token
    token = token.strip()
    if not token:
        got = "empty stdin" if args.token == "-" else "an empty string"
        problems.append(f"TOKEN: no token (got {got}; allowed: a JWT, or '-' to read stdin)")
    if args.cache is not None:
        try:
            check_cache_name(args.cache)
        except TokenError as exc:
            problems.extend(exc.lines)
    key: TokenKey | None = None
    try:
        key = load_key(args.key_file)
    except TokenError as exc:
        problems.extend(exc.lines)
    if problems or key is None:
        return _report(problems, "nothing was inspected")
    result = inspect(
        token,
        key,
        now=time.time(),
        cache=args.cache,
        issuer=args.issuer,
        audiences=args.audience,
    )
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
