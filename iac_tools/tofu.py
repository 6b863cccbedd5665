"""``attic-iac tofu``: run OpenTofu on synthesized stacks against their GitLab-managed state.

What it adds to calling ``tofu`` by hand, each a mistake seen in real pipelines:

- ``apply`` only ever applies the plan saved by ``plan`` for the same synthesized output, so
  what was reviewed is what changes;
- the state password comes from the environment only (``TF_HTTP_PASSWORD``, else the CI job
  token with GitLab's job-token user, else ``GITLAB_TOKEN``), never from ``-backend-config``,
  which OpenTofu writes into ``.terraform/``;
- a deployment freeze refuses ``apply`` and ``destroy`` before OpenTofu starts;
- a held state lock is explained with the way out;
- a plan or destroy missing a required input (``TF_VAR_<name>``, e.g. the dashboard's image
  digest) stops before OpenTofu starts, naming every missing variable;
- ``--all`` walks an environment's stacks in dependency order (backwards for ``destroy``);
  ``--except KIND`` leaves a kind out of that walk (the pipeline applies the dashboard, a leaf,
  in a job of its own after the rest).

The stacks and the environment it reads are in :mod:`iac_tools.tofu_inputs`; this module runs
OpenTofu. Standard library only: CI runs it as ``python3 -m iac_tools.tofu`` in the OpenTofu
image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from iac_tools.tofu_inputs import (
    Credentials,
    DriverError,
    Stack,
    backend_of,
    child_environment,
    default_outdir,
    environment_stacks,
    freeze_notice,
    load_stacks,
    missing_inputs,
    state_credentials,
)
from stacks.stack_kinds import STACK_KINDS, split_stack_id

EXIT_BAD_INPUT = 2
EXIT_FROZEN = 3

VERBS = ("init", "plan", "apply", "destroy", "unlock")
PLAN_FILE = "tfplan"
PLAN_META = "tfplan.meta.json"
PLAN_TEXT = "plan.txt"
# GitLab's ``artifacts:reports:terraform`` format: counts of planned actions.
PLAN_REPORT = "plan.report.json"
INIT_MARKER = Path(".terraform") / "attic-iac-backend.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb on one stack or on every stack of an environment."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Split by hand: argparse would hand OpenTofu's flags to our optional positionals.
    split = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:split])
    args.passthrough = argv[split + 1 :]
    try:
        return _run(args)
    except DriverError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attic-iac tofu",
        description="Run OpenTofu in cdktf.out/stacks/<stack>: init, plan (saved), apply (only "
        "the saved plan), destroy, unlock. Exit 2 on bad input, 3 during a deployment freeze, "
        "else OpenTofu's exit code.",
        epilog="Credentials: TF_HTTP_PASSWORD, else CI_JOB_TOKEN (as gitlab-ci-token), else "
        "GITLAB_TOKEN. Freeze: DEPLOYMENT_FREEZE=true or GitLab's CI_DEPLOY_FREEZE refuse apply "
        "and destroy (FREEZE_REASON and FREEZE_CONTACT are printed). Arguments after -- go to "
        "tofu, e.g. -- -lock-timeout=10m.",
    )
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("stack", nargs="?", help="<kind>-<env>, e.g. attic-prod")
    parser.add_argument("lock_id", nargs="?", help="unlock only: the lock ID OpenTofu printed")
    parser.add_argument(
        "--all", action="store_true", help="every stack of --env, in dependency order"
    )
    parser.add_argument("--env", help="the environment for --all")
    parser.add_argument(
        "--except",
        dest="excluded",
        action="append",
        default=[],
        metavar="KIND",
        help="with --all: leave out the stack of this kind (repeatable), e.g. --except dashboard",
    )
    parser.add_argument(
        "--outdir", type=Path, help="synthesized output (default: $CDKTF_OUTDIR or cdktf.out)"
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    verb: str = args.verb
    targets = _targets(args)
    if verb in ("apply", "destroy"):
        frozen = freeze_notice(os.environ)
        if frozen:
            for line in frozen:
                print(line, file=sys.stderr)
            return EXIT_FROZEN
    if verb in ("plan", "destroy") and not _passes_variables(args.passthrough):
        missing = [line for stack in targets for line in missing_inputs(stack, os.environ)]
        if missing:
            raise DriverError(*missing)
    credentials = state_credentials(os.environ)
    env = child_environment(os.environ, credentials)
    tofu = os.environ.get("TOFU_BIN") or "tofu"
    for stack in targets:
        if verb == "apply":
            _require_saved_plan(stack)
        code = _run_verb(verb, stack, args, tofu=tofu, env=env, credentials=credentials)
        if code != 0:
            if len(targets) > 1:
                rest = [s.name for s in targets[targets.index(stack) + 1 :]]
                if rest:
                    print(f"attic-iac: stopped; not run: {', '.join(rest)}", file=sys.stderr)
            return code
    return 0


def _passes_variables(passthrough: Sequence[str]) -> bool:
    """Whether OpenTofu's own arguments give variables (``-var``, ``-var-file``)."""
    return any(arg.split("=", 1)[0] in ("-var", "-var-file") for arg in passthrough)


def _targets(args: argparse.Namespace) -> list[Stack]:
    stacks = load_stacks(args.outdir or default_outdir())
    if args.verb != "unlock" and args.lock_id is not None:
        raise DriverError(
            f"unexpected argument {args.lock_id!r}; OpenTofu's own arguments go after --"
        )
    if args.all:
        if args.stack is not None:
            raise DriverError(f"give a stack or --all, not both (got {args.stack!r} and --all)")
        if args.verb == "unlock":
            raise DriverError("unlock takes one stack and its lock ID, not --all")
        if not args.env:
            raise DriverError("--all needs --env ENV")
        chosen = _leave_out(environment_stacks(stacks, args.env), args.excluded, args.env)
        if args.verb == "destroy":
            chosen.reverse()
        return chosen
    if args.env:
        raise DriverError("--env only goes with --all")
    if args.excluded:
        raise DriverError("--except only goes with --all")
    if args.stack is None:
        raise DriverError(f"name a stack (one of: {', '.join(stacks)}) or use --all --env ENV")
    if args.stack not in stacks:
        raise DriverError(
            f"stack {args.stack!r} is not in the synthesized output "
            f"(allowed: {', '.join(stacks)}); run `make synth` after changing the config"
        )
    if args.verb == "unlock" and not args.lock_id:
        raise DriverError("unlock needs the lock ID: attic-iac tofu unlock <stack> <LOCK_ID>")
    return [stacks[args.stack]]


def _leave_out(chosen: list[Stack], excluded: Sequence[str], environment: str) -> list[Stack]:
    """``chosen`` without the stacks of the ``--except`` kinds, in the same order."""
    kinds = [kind.name for kind in STACK_KINDS]
    unknown = [kind for kind in excluded if kind not in kinds]
    if unknown:
        raise DriverError(
            *(f"--except: unknown kind {kind!r} (allowed: {', '.join(kinds)})" for kind in unknown)
        )
    kept = [stack for stack in chosen if _kind(stack) not in excluded]
    if not kept:
        raise DriverError(f"--except leaves no stack of {environment!r} to run")
    return kept


def _kind(stack: Stack) -> str | None:
    parts = split_stack_id(stack.name)
    return parts[0] if parts else None


def _init_args(stack: Stack, credentials: Credentials) -> tuple[list[str], str]:
    """Init arguments for ``stack`` and the fingerprint of the backend they select."""
    backend = backend_of(stack)
    args = ["init", "-input=false"]
    settings = next(iter(backend.values()), None)
    configured = settings.get("username") if isinstance(settings, dict) else None
    if credentials.username and credentials.username != configured:
        args.append(f"-backend-config=username={credentials.username}")
    fingerprint = hashlib.sha256(
        json.dumps([backend, credentials.username or configured], sort_keys=True).encode()
    ).hexdigest()
    marker = stack.directory / INIT_MARKER
    previous = marker.read_text().strip() if marker.exists() else None
    initialized = (stack.directory / ".terraform" / "terraform.tfstate").exists()
    if (previous is not None and previous != fingerprint) or (initialized and previous is None):
        args.append("-reconfigure")
    return args, fingerprint


def _needs_init(stack: Stack, fingerprint: str) -> bool:
    marker = stack.directory / INIT_MARKER
    return not (marker.exists() and marker.read_text().strip() == fingerprint)


def _init(
    stack: Stack,
    *,
    tofu: str,
    env: Mapping[str, str],
    credentials: Credentials,
    extra: Sequence[str] = (),
    force: bool = False,
) -> int:
    args, fingerprint = _init_args(stack, credentials)
    if not force and not _needs_init(stack, fingerprint):
        return 0
    code = _tofu(stack, tofu, [*args, *extra], env=env)
    if code == 0:
        marker = stack.directory / INIT_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(fingerprint + "\n")
    return code


def _run_verb(
    verb: str,
    stack: Stack,
    args: argparse.Namespace,
    *,
    tofu: str,
    env: Mapping[str, str],
    credentials: Credentials,
) -> int:
    extra: list[str] = list(args.passthrough)
    if verb == "init":
        return _init(stack, tofu=tofu, env=env, credentials=credentials, extra=extra, force=True)
    code = _init(stack, tofu=tofu, env=env, credentials=credentials)
    if code != 0:
        return code
    if verb == "plan":
        return _plan(stack, tofu=tofu, env=env, extra=extra)
    if verb == "apply":
        code = _tofu(stack, tofu, ["apply", "-input=false", *extra, PLAN_FILE], env=env)
        if code == 0:
            (stack.directory / PLAN_FILE).unlink(missing_ok=True)
            (stack.directory / PLAN_META).unlink(missing_ok=True)
        return code
    if verb == "destroy":
        return _tofu(stack, tofu, ["destroy", *extra], env=env)
    return _tofu(stack, tofu, ["force-unlock", "-force", *extra, args.lock_id], env=env)


def _plan(stack: Stack, *, tofu: str, env: Mapping[str, str], extra: Sequence[str]) -> int:
    for stale in (PLAN_FILE, PLAN_META, PLAN_TEXT, PLAN_REPORT):
        (stack.directory / stale).unlink(missing_ok=True)
    code = _tofu(stack, tofu, ["plan", "-input=false", f"-out={PLAN_FILE}", *extra], env=env)
    if code != 0:
        return code
    shown = _capture(stack, tofu, ["show", "-no-color", PLAN_FILE], env=env)
    if shown is None:
        return 1
    (stack.directory / PLAN_TEXT).write_text(shown)
    # The JSON plan holds sensitive values in clear: it is read here and never written.
    as_json = _capture(stack, tofu, ["show", "-json", PLAN_FILE], env=env)
    if as_json is None:
        return 1
    try:
        report = plan_report(json.loads(as_json))
    except ValueError as exc:
        print(f"error: {stack.name}: tofu show -json: {exc}", file=sys.stderr)
        return 1
    (stack.directory / PLAN_REPORT).write_text(json.dumps(report) + "\n")
    meta = {"stack": stack.name, "cdk_tf_json_sha256": _digest(stack.document)}
    (stack.directory / PLAN_META).write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"attic-iac: {stack.name}: saved plan {stack.directory / PLAN_FILE}: "
        f"{report['create']} to create, {report['update']} to update, "
        f"{report['delete']} to delete; apply it with `attic-iac tofu apply {stack.name}`"
    )
    return 0


def plan_report(plan: Mapping[str, Any]) -> dict[str, int]:
    """GitLab's terraform report: planned actions counted over every resource change."""
    changes = plan.get("resource_changes")
    if changes is not None and not isinstance(changes, list):
        raise ValueError("resource_changes is not a list")
    actions = [
        action
        for change in changes or ()
        for action in (change.get("change") or {}).get("actions") or ()
    ]
    return {verb: actions.count(verb) for verb in ("create", "update", "delete")}


def _require_saved_plan(stack: Stack) -> None:
    plan = stack.directory / PLAN_FILE
    meta_path = stack.directory / PLAN_META
    if not plan.exists() or not meta_path.exists():
        raise DriverError(
            f"{stack.name}: no saved plan ({plan} is missing); apply only applies a reviewed "
            f"plan: run `attic-iac tofu plan {stack.name}` first"
        )
    try:
        planned = json.loads(meta_path.read_text()).get("cdk_tf_json_sha256")
    except (OSError, ValueError):
        planned = None
    if planned != _digest(stack.document):
        raise DriverError(
            f"{stack.name}: the saved plan is older than the synthesized stack ({stack.document} "
            f"changed since it was planned); plan again: `attic-iac tofu plan {stack.name}`"
        )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _announce(stack: Stack, args: Sequence[str]) -> None:
    print(f"attic-iac: {stack.name}: tofu {' '.join(args)}", flush=True)


def _tofu(stack: Stack, tofu: str, args: Sequence[str], *, env: Mapping[str, str]) -> int:
    """Run tofu with its output streamed through, and explain a held state lock."""
    _announce(stack, args)
    seen: list[str] = []
    try:
        with subprocess.Popen(
            [tofu, *args],
            cwd=stack.directory,
            env=dict(env),
            stdin=subprocess.DEVNULL if "-input=false" in args else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        ) as process:
            assert process.stdout is not None
            assert process.stderr is not None
            pumps = [
                threading.Thread(target=_pump, args=(process.stdout, sys.stdout, seen)),
                threading.Thread(target=_pump, args=(process.stderr, sys.stderr, seen)),
            ]
            for pump in pumps:
                pump.start()
            for pump in pumps:
                pump.join()
            code = process.wait()
    except FileNotFoundError:
        raise DriverError(
            f"OpenTofu not found: {tofu!r} (install it, or set TOFU_BIN to its path)"
        ) from None
    if code != 0:
        advice = lock_advice(stack.name, "".join(seen))
        for line in advice:
            print(line, file=sys.stderr)
    return code


def _capture(stack: Stack, tofu: str, args: Sequence[str], *, env: Mapping[str, str]) -> str | None:
    """Run tofu for its output; None (with its error shown) when it fails."""
    result = subprocess.run(
        [tofu, *args],
        cwd=stack.directory,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if result.returncode != 0:
        print(f"error: {stack.name}: tofu {' '.join(args)} failed:", file=sys.stderr)
        sys.stderr.write(result.stderr)
        return None
    return result.stdout


def _pump(source: IO[str], sink: IO[str], seen: list[str]) -> None:
    for line in source:
        sink.write(line)
        sink.flush()
        seen.append(line)


_LOCK_FIELD = re.compile(r"^\s*(ID|Who|Created|Operation):\s*(\S.*?)\s*$", re.MULTILINE)


def lock_advice(stack: str, output: str) -> list[str]:
    """How to get past a held state lock, when OpenTofu's output says that is what failed."""
    if "Error acquiring the state lock" not in output:
        return []
    _, _, info = output.partition("Lock Info:")
    fields = dict(_LOCK_FIELD.findall(info))
    lock_id = fields.get("ID") or "<LOCK_ID>"
    holder = ", ".join(
        f"{label} {fields[key]}"
        for key, label in (("Who", "held by"), ("Operation", "for"), ("Created", "since"))
        if key in fields
    )
    return [
        f"attic-iac: {stack}: the GitLab state is locked (lock {lock_id}"
        + (f", {holder})" if holder else ")"),
        "  if that run is still going, wait for it: repeat with -- -lock-timeout=10m",
        "  if it died (a cancelled or crashed job), release the lock:",
        f"    attic-iac tofu unlock {stack} {lock_id}",
    ]


if __name__ == "__main__":
    sys.exit(main())
