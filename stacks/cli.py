"""``attic-iac``: synthesize, validate the config, print its schema, list stacks."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stacks.loader import ConfigError, LoadedConfig, load_config, resolve_config_path

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 2 on bad input, with one line per problem and no traceback."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        print(f"{len(exc.lines)} problem(s); nothing was synthesized.", file=sys.stderr)
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

    synth = sub.add_parser("synth", parents=[common], help="synthesize every stack")
    synth.add_argument(
        "--outdir", type=Path, help="output folder (default: $CDKTF_OUTDIR or cdktf.out)"
    )
    synth.set_defaults(handler=_synth)

    sub.add_parser("validate", parents=[common], help="check the config and exit").set_defaults(
        handler=_validate
    )
    sub.add_parser("schema", help="print the config's JSON Schema").set_defaults(handler=_schema)

    stacks = sub.add_parser("stacks", parents=[common], help="list stacks in apply order")
    stacks.add_argument("--env", help="only this environment")
    stacks.set_defaults(handler=_stacks)
    return parser


def _load(args: argparse.Namespace) -> LoadedConfig:
    path, notice = resolve_config_path(args.config)
    if notice:
        print(notice, file=sys.stderr)
    return load_config(path)


def _synth(args: argparse.Namespace) -> int:
    config = _load(args)  # before anything imports jsii: bad configs fail fast
    for env_name, env in config.environments.items():
        if env.config.attic.storage.backend == "minio":
            print(
                f"warning: {env_name}: attic.storage.backend 'minio' - MinIO's open-source "
                "project was archived in 2026 and gets no security fixes; prefer 'seaweedfs' "
                "or 's3'",
                file=sys.stderr,
            )
    from constructs_lib.validation import PropsError
    from stacks.synth import default_outdir, synthesize

    outdir = args.outdir or default_outdir()
    try:
        summaries = synthesize(config, outdir)
    except PropsError as exc:
        for problem in exc.problems:
            print(f"error: {exc.construct}: {problem}", file=sys.stderr)
        print("nothing was synthesized; the output folder is unchanged.", file=sys.stderr)
        return EXIT_BAD_INPUT
    for summary in summaries:
        print(f"{summary.stack}: {summary.resources} resources")
    print(f"synthesized {len(summaries)} stacks into {outdir}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"{config.path}: valid ({len(config.environments)} environments)")
    return 0


def _schema(_: argparse.Namespace) -> int:
    from stacks.config import OrganizationConfig

    print(json.dumps(OrganizationConfig.model_json_schema(), indent=2, sort_keys=True))
    return 0


def _stacks(args: argparse.Namespace) -> int:
    from stacks.app import apply_order

    config = _load(args)
    if args.env and args.env not in config.environments:
        known = ", ".join(config.environments)
        raise ConfigError([f"--env: unknown environment (got {args.env!r}; allowed: {known})"])
    for name in apply_order(config, args.env):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
