"""The ``nix-build`` component: build an installable with the Attic cache flywheel around it.

It carries the nix runner's ``setup.sh`` and ``flywheel.sh`` verbatim (a copy could drift):
``setup.sh`` inline in ``before_script``, ``flywheel.sh`` written out by a quoted heredoc.
"""

from __future__ import annotations

from constructs_lib.runners.attic_flywheel import FLYWHEEL_SCRIPT, SETUP_SCRIPT
from constructs_lib.versions import NIX_IMAGE
from iac_tools.ci_component_parts import (
    FLAKES,
    VARIABLE_NAME_REGEX,
    Component,
    append_nix_config,
    common_inputs,
    inp,
    input_spec,
    ops_script,
    tags_input,
    timeout_input,
)
from upstream_formats.attic_names import CACHE_NAME

# Attic is asked before cache.nixos.org (priority 40), as on the fleet's nix runner.
SUBSTITUTER_PRIORITY = 30
# The quoted delimiter of the heredoc that writes flywheel.sh: nothing inside is expanded.
FLYWHEEL_DELIMITER = "ATTIC_FLYWHEEL_SH"

# Run first in before_script and in after_script (a new shell): the settings setup.sh and
# flywheel.sh read, exported by the shell so that they win over a runner's own ATTIC_*.
NIX_BUILD_ENV = """\
# The Attic settings from the inputs, for setup.sh and flywheel.sh.
FLYWHEEL_DIR="${TMPDIR:-/tmp}/attic-nix-build"
ATTIC_ENDPOINT="${FLYWHEEL_SERVER%/}/"
ATTIC_CACHES="$FLYWHEEL_CACHE"
ATTIC_PUSH_CACHE="$FLYWHEEL_CACHE"
ATTIC_TOKEN_FILE="$FLYWHEEL_DIR/token"
export ATTIC_ENDPOINT ATTIC_CACHES ATTIC_PUSH_CACHE ATTIC_TOKEN_FILE
"""

NIX_BUILD_TOKEN = """\
# The token: the CI/CD variable named by token_variable holds the JWT (masked variable) or the
# path of a file holding it (File-type variable). It goes into a 0600 file and is never
# printed; xtrace (CI_DEBUG_TRACE) is off while a shell variable holds it.
case $- in
    *x*) _nb_xtrace=1 && set +x ;;
    *) _nb_xtrace= ;;
esac
mkdir -p "$FLYWHEEL_DIR" && chmod 700 "$FLYWHEEL_DIR" || :
rm -f "$ATTIC_TOKEN_FILE"
_nb_token=
case $FLYWHEEL_TOKEN_VARIABLE in
    '' | [0-9]* | *[!A-Za-z0-9_]*)
        echo "nix-build: token_variable '$FLYWHEEL_TOKEN_VARIABLE' is not a variable name" ;;
    *) eval "_nb_token=\\${$FLYWHEEL_TOKEN_VARIABLE:-}" ;;
esac
case $_nb_token in
    /*)
        if [ -f "$_nb_token" ] && [ -r "$_nb_token" ]; then
            IFS= read -r _nb_token <"$_nb_token" || :
        else
            _nb_token=
        fi
        ;;
esac
if [ -z "$_nb_token" ]; then
    echo "nix-build: \\$$FLYWHEEL_TOKEN_VARIABLE is empty (a fork's merge request, or a" \\
        "protected variable on an unprotected ref): public caches only, no push"
elif ! (umask 077 && printf '%s\\n' "$_nb_token" >"$ATTIC_TOKEN_FILE"); then
    echo "nix-build: could not write the token file: public caches only, no push"
fi
unset _nb_token
if [ -n "$_nb_xtrace" ]; then
    set -x
fi
unset _nb_xtrace
if [ "$[[ inputs.push ]]" != true ]; then
    ATTIC_PUSH_CACHE=
    echo "nix-build: push is off: pulling only"
fi
"""

NIX_BUILD_BUILD = """\
# The build, whose exit status is the job's. The final push and the stop of watch-store run
# here, not in after_script (which has a short timeout of its own); both are bounded and
# never change that status.
_nb_status=0
set -f # nix_args are split at blanks, never globbed
_nb_paths=$(nix build --print-build-logs --print-out-paths $FLYWHEEL_NIX_ARGS \\
    "$FLYWHEEL_INSTALLABLE") || _nb_status=$?
set -- $_nb_paths
set +f
if [ "$_nb_status" -ne 0 ]; then
    echo "nix-build: the build failed (exit $_nb_status)"
elif [ $# -gt 0 ]; then
    printf 'nix-build: built %s\\n' "$@"
fi
sh "$FLYWHEEL_DIR/flywheel.sh" stop "$@" || :
exit "$_nb_status"
"""

NIX_BUILD_AFTER = """\
# Only after a cancelled, timed-out or broken script: stop watch-store, which has already
# pushed every path that finished. Run where no ./result* is, so nothing more is pushed.
if [ -r "$FLYWHEEL_DIR/flywheel.sh" ]; then
    (cd "$FLYWHEEL_DIR" && sh ./flywheel.sh stop) || :
fi
"""


def nix_build() -> Component:
    """Build an installable with the Attic cache flywheel around it."""
    setup = ops_script(SETUP_SCRIPT)
    flywheel = ops_script(FLYWHEEL_SCRIPT)
    inputs = {
        **common_inputs("nix-build", "build"),
        "runner_tags": tags_input("nix", "nixos/nix, Attic pulls already configured"),
        "server": input_spec(
            "string",
            "Attic API base URL, e.g. https://attic.example.com/ (the substituter of a cache is "
            "<server>/<cache>).",
            regex=r"^https?://[^\s/]+(/\S*)?$",
        ),
        "cache": input_spec(
            "string", "The Attic cache to pull from and push to.", regex=CACHE_NAME.pattern
        ),
        "token_variable": input_spec(
            "string",
            "Name of the CI/CD variable holding the Attic token (masked, or File type). Empty "
            "or absent (forks, unprotected refs): public caches are pulled anonymously and "
            "nothing is pushed.",
            "ATTIC_TOKEN",
            regex=VARIABLE_NAME_REGEX,
        ),
        "push": input_spec(
            "boolean", "Push to the cache (watch-store and a final push); false: pull only.", True
        ),
        "installable": input_spec("string", "What to build (a flake installable).", ".#default"),
        "nix_args": input_spec(
            "string", "Extra arguments of nix build, split at blanks (no quoting).", ""
        ),
        "attic_client": input_spec(
            "string",
            "Installable of the attic client, substituted from the caches and never built "
            "(pin it, e.g. github:NixOS/nixpkgs/<rev>#attic-client).",
            "nixpkgs#attic-client",
        ),
        "push_timeout": input_spec(
            "number", "Seconds the final push may take; then it is cut off (the job goes on).", 1200
        ),
        "client_timeout": input_spec(
            "number", "Seconds fetching the attic client may take; then nothing is pushed.", 300
        ),
        "timeout": timeout_input("2h"),
    }
    job = {
        "stage": inp("stage"),
        "image": NIX_IMAGE.ref,
        "tags": inp("runner_tags"),
        # The flywheel: start at once, whatever the earlier stages do.
        "needs": [],
        "interruptible": True,
        "timeout": inp("timeout"),
        "variables": {
            "FLYWHEEL_SERVER": inp("server"),
            "FLYWHEEL_CACHE": inp("cache"),
            "FLYWHEEL_TOKEN_VARIABLE": inp("token_variable"),
            "FLYWHEEL_INSTALLABLE": inp("installable"),
            "FLYWHEEL_NIX_ARGS": inp("nix_args"),
            "ATTIC_CLIENT": inp("attic_client"),
            "ATTIC_FLYWHEEL_PUSH_TIMEOUT": inp("push_timeout"),
            "ATTIC_FLYWHEEL_CLIENT_TIMEOUT": inp("client_timeout"),
        },
        "before_script": [
            NIX_BUILD_ENV,
            NIX_BUILD_TOKEN,
            append_nix_config(
                "Pull as the fleet's nix runner does; setup.sh adds the key and a netrc.",
                [
                    FLAKES,
                    "extra-substituters = $ATTIC_ENDPOINT$ATTIC_CACHES"
                    f"?priority={SUBSTITUTER_PRIORITY}",
                    # An unreachable or broken cache must not fail a build: build it instead.
                    "fallback = true",
                    "connect-timeout = 5",
                ],
            ),
            # setup.sh is written to be sourced: inline, it runs in the job's own shell.
            setup,
            f"cat >\"$FLYWHEEL_DIR/{FLYWHEEL_SCRIPT}\" <<'{FLYWHEEL_DELIMITER}' || :\n"
            f"{flywheel}{FLYWHEEL_DELIMITER}\n",
        ],
        "script": [
            f'sh "$FLYWHEEL_DIR/{FLYWHEEL_SCRIPT}" start || :',
            NIX_BUILD_BUILD,
        ],
        "after_script": [NIX_BUILD_ENV, NIX_BUILD_AFTER],
    }
    return Component(name="nix-build", inputs=inputs, jobs={inp("job_name"): job}, module=__name__)
