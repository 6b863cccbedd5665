#!/bin/sh
# The push half of the cache flywheel, run by Nix CI jobs:
#   sh /opt/attic-flywheel/flywheel.sh start           before the build
#   sh /opt/attic-flywheel/flywheel.sh stop [PATH...]  after it (default: ./result*)
# start gets an attic client (from PATH, else substituted with `nix build --max-jobs 0`, which
# never compiles), logs in with $ATTIC_TOKEN_FILE and runs `attic watch-store` in the
# background: each path the build adds is pushed as soon as it exists, so a failed or cancelled
# build still leaves its finished dependencies for the next pipeline. stop pushes the given paths
# (the build's result) and then stops watch-store: TERM, a bounded wait, KILL.
# Both always exit 0, because the cache is an optimisation and must never fail a build; every
# wait is bounded, and watch-store reads /dev/null and writes a log file, so it holds no pipe
# that would keep the job step waiting.
#
# Environment: ATTIC_ENDPOINT, ATTIC_PUSH_CACHE and ATTIC_TOKEN_FILE (set by the runner);
# ATTIC_CLIENT, the installable of the client (default nixpkgs#attic-client); limits in seconds:
# ATTIC_FLYWHEEL_CLIENT_TIMEOUT (300), ATTIC_FLYWHEEL_PUSH_TIMEOUT (1200) and
# ATTIC_FLYWHEEL_STOP_WAIT (15, for watch-store to exit after TERM).
set -u
set +x # the login command line holds the token

SERVER=attic-flywheel
STATE=${TMPDIR:-/tmp}/attic-flywheel
LOG=$STATE/watch-store.log

say() {
    printf 'attic-flywheel: %s\n' "$*"
}

# $1 if it is a number of seconds, else the default $2.
seconds() {
    case $1 in
        '' | *[!0-9]*) echo "$2" ;;
        *) echo "$1" ;;
    esac
}

CLIENT_TIMEOUT=$(seconds "${ATTIC_FLYWHEEL_CLIENT_TIMEOUT:-}" 300)
PUSH_TIMEOUT=$(seconds "${ATTIC_FLYWHEEL_PUSH_TIMEOUT:-}" 1200)
STOP_WAIT=$(seconds "${ATTIC_FLYWHEEL_STOP_WAIT:-}" 15)

# Whether process $1 runs. A killed process that its parent (here not us) has not reaped yet
# still answers kill -0, so a zombie counts as gone.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ] && read -r stat <"/proc/$1/stat"; then
        state=${stat##*) }
        case $state in
            Z*) return 1 ;;
        esac
    fi
    return 0
}

# Run "$@" for at most $1 seconds (then TERM, and KILL 5 s later); its exit status.
bounded() {
    limit=$1
    shift
    "$@" &
    child=$!
    (
        waited=0
        while [ "$waited" -lt "$limit" ]; do
            sleep 1
            kill -0 "$child" 2>/dev/null || exit 0
            waited=$((waited + 1))
        done
        kill -TERM "$child" 2>/dev/null
        sleep 5
        kill -KILL "$child" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
    wait "$child"
    status=$?
    kill "$watchdog" 2>/dev/null
    return "$status"
}

# Whether pushing is configured; says why not. Sets $token.
ready() {
    if [ -z "${ATTIC_PUSH_CACHE:-}" ] || [ -z "${ATTIC_ENDPOINT:-}" ]; then
        say "ATTIC_PUSH_CACHE or ATTIC_ENDPOINT is empty: this runner only pulls; nothing to $1"
        return 1
    fi
    if [ -z "${ATTIC_TOKEN_FILE:-}" ] || [ ! -r "$ATTIC_TOKEN_FILE" ]; then
        say "no readable push token (ATTIC_TOKEN_FILE='${ATTIC_TOKEN_FILE:-}'); nothing to $1"
        return 1
    fi
    token=
    IFS= read -r token <"$ATTIC_TOKEN_FILE"
    case $token in
        '' | -* | *[!A-Za-z0-9._-]*)
            say "$ATTIC_TOKEN_FILE does not hold a JWT; nothing to $1"
            return 1
            ;;
    esac
}

# Set $attic to a client: the one on PATH, else one substituted from the caches.
client() {
    if attic=$(command -v attic); then
        return 0
    fi
    if ! command -v nix >/dev/null 2>&1; then
        say "no attic client and no nix to fetch one: not pushing"
        return 1
    fi
    installable=${ATTIC_CLIENT:-nixpkgs#attic-client}
    say "fetching $installable (substitutes only, never builds; at most ${CLIENT_TIMEOUT}s)"
    if bounded "$CLIENT_TIMEOUT" nix build --max-jobs 0 --no-link --print-out-paths \
        "$installable" >"$STATE/client.out" 2>"$STATE/client.err" &&
        read -r out <"$STATE/client.out" && [ -x "$out/bin/attic" ]; then
        attic=$out/bin/attic
        return 0
    fi
    say "could not fetch $installable without building it: not pushing. nix said:"
    tail -n 5 "$STATE/client.err" 2>/dev/null
    return 1
}

start() {
    ready start || return 0
    if ! mkdir -p "$STATE" || ! chmod 700 "$STATE"; then
        say "cannot create $STATE: not pushing"
        return 0
    fi
    if [ -r "$STATE/pid" ] && read -r pid <"$STATE/pid" && alive "$pid"; then
        say "watch-store is already running (pid $pid)"
        return 0
    fi
    client || return 0
    # Output could echo the arguments back, token included: only the status is shown.
    if ! "$attic" login "$SERVER" "$ATTIC_ENDPOINT" "$token" </dev/null >/dev/null 2>&1; then
        say "attic login failed: not pushing"
        return 0
    fi
    printf '%s\n' "$attic" >"$STATE/attic"
    "$attic" watch-store "$SERVER:$ATTIC_PUSH_CACHE" </dev/null >>"$LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$STATE/pid"
    sleep 1
    if alive "$pid"; then
        say "watch-store (pid $pid) pushes new store paths to $ATTIC_PUSH_CACHE; log: $LOG"
    else
        rm -f "$STATE/pid"
        say "watch-store exited at once; only the final push will run. Its log:"
        tail -n 10 "$LOG" 2>/dev/null
    fi
}

# Stop watch-store; sets $stopped to what happened.
stop_watch_store() {
    stopped="was not running"
    [ -r "$STATE/pid" ] && read -r pid <"$STATE/pid" || return 0
    rm -f "$STATE/pid"
    if ! alive "$pid"; then
        stopped="had exited on its own"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    waited=0
    while alive "$pid" && [ "$waited" -lt "$STOP_WAIT" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        stopped="ignored TERM for ${STOP_WAIT}s and was killed"
    else
        stopped="stopped"
    fi
}

stop() {
    ready stop || return 0
    if ! [ -r "$STATE/attic" ] || ! read -r attic <"$STATE/attic"; then
        say "the flywheel was not started, or is already stopped: nothing to push"
        return 0
    fi
    if [ $# -eq 0 ]; then
        # Nix's out-links: symlinks into the store, not any file called result*.
        for path in result*; do
            if [ -L "$path" ] && [ -e "$path" ]; then
                set -- "$@" "$path"
            fi
        done
    fi
    if [ $# -eq 0 ]; then
        pushed="nothing to push (no paths given, no ./result*)"
    else
        say "pushing $* to $ATTIC_PUSH_CACHE (at most ${PUSH_TIMEOUT}s)"
        # Into a file: a child the push leaves behind must not hold the job's output open.
        if bounded "$PUSH_TIMEOUT" "$attic" push "$SERVER:$ATTIC_PUSH_CACHE" "$@" \
            >"$STATE/push.log" 2>&1; then
            pushed="pushed $# path(s)"
        else
            pushed="push FAILED (exit $status); the build is not affected"
        fi
        tail -n 20 "$STATE/push.log"
    fi
    stop_watch_store
    rm -f "$STATE/attic"
    say "summary: $pushed; watch-store $stopped"
    if [ -s "$LOG" ]; then
        say "last lines of $LOG:"
        tail -n 15 "$LOG"
    fi
}

case ${1:-} in
    start) start ;;
    stop)
        shift
        stop "$@"
        ;;
    *)
        say "usage: flywheel.sh start | stop [PATH...]"
        exit 2
        ;;
esac
exit 0
