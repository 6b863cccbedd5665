# Sourced by the nix runner's pre_build_script in the job's own shell, so that its exports reach
# the job's script. Hence it never exits and never sets -e or -u, yet survives them (and
# pipefail) when the runner or the job has set them; it names everything _af_* and unsets it at
# the end, and turns xtrace off while it holds the token (CI_DEBUG_TRACE would print it).
#
# Input: ATTIC_ENDPOINT (API base ending in /), ATTIC_CACHES (space-separated names) and,
# optionally, ATTIC_TOKEN_FILE. For each cache it asks atticd for the cache's public key
# (GET _api/v1/cache-config/<cache>, with the token when there is one) and appends to NIX_CONFIG
#   extra-trusted-public-keys = <the key of every cache that answered, in order>
#   netrc-file = <a 0600 netrc holding the token>        (when the token is readable)
# The substituters themselves are in the runner's static NIX_CONFIG: a cache that does not
# answer here only stays untrusted, and Nix skips a failing substituter and falls back.

case $- in
    *x*) _af_xtrace=1 && set +x ;;
    *) _af_xtrace= ;;
esac

_af_say() {
    printf 'attic-flywheel: %s\n' "$*" >&2
}

_af_add_config() {
    NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}$1"
    export NIX_CONFIG
}

# GET $1, body on stdout, nothing else: errors are judged by the exit status alone. curl gets
# the token through a config on stdin, so it is never on a command line; the wget fallback has
# no such option, and there it shows only to the job's own processes.
_af_get() {
    if command -v curl >/dev/null 2>&1; then
        if [ -n "$_af_token" ]; then
            printf 'header = "Authorization: Bearer %s"\n' "$_af_token"
        fi | curl -q -fsS --connect-timeout 3 --max-time 10 -K - "$1" 2>/dev/null
        return
    fi
    command -v wget >/dev/null 2>&1 || return 127
    _af_url=$1
    # GNU wget retries a timeout 20 times unless told; busybox wget has no --tries, and some
    # builds crash on -T, so an external timeout bounds it instead.
    case $(wget --version 2>/dev/null) in
        *"GNU Wget"*) set -- wget -T 5 --tries=1 ;;
        *)
            set -- wget
            if command -v timeout >/dev/null 2>&1; then
                set -- timeout 10 wget
            fi
            ;;
    esac
    if [ -n "$_af_token" ]; then
        set -- "$@" --header "Authorization: Bearer $_af_token"
    fi
    "$@" -q -O - "$_af_url" 2>/dev/null
}

# Set _af_key to the "public_key" string of the cache-config JSON in $1 ("<name>:<base64>").
_af_public_key() {
    _af_rest=${1#*\"public_key\"}
    [ "$_af_rest" != "$1" ] || return 1
    _af_sep=${_af_rest%%\"*}
    case $_af_sep in
        *[!:[:space:]]* | *:*:*) return 1 ;;
        *:*) ;;
        *) return 1 ;;
    esac
    _af_rest=${_af_rest#*\"}
    _af_key=${_af_rest%%\"*}
    case $_af_key in
        *[!A-Za-z0-9+/=:._-]* | :* | *:) return 1 ;;
        *:*) return 0 ;;
        *) return 1 ;;
    esac
}

# Set _af_host to the host of $ATTIC_ENDPOINT, without user info or port (what netrc matches).
_af_endpoint_host() {
    _af_host=${ATTIC_ENDPOINT#*://}
    _af_host=${_af_host%%/*}
    _af_host=${_af_host##*@}
    case $_af_host in
        \[*\]*) _af_host="${_af_host%%\]*}]" ;;
        *) _af_host=${_af_host%:*} ;;
    esac
}

# Called only as `_af_main || :`, so -e is ignored inside whatever the caller had set.
_af_main() {
    _af_token=
    _af_keys=
    _af_trusted=
    _af_missing=
    if [ -z "${ATTIC_ENDPOINT:-}" ] || [ -z "${ATTIC_CACHES:-}" ]; then
        _af_say "ATTIC_ENDPOINT or ATTIC_CACHES is empty: no Attic keys configured"
        return 0
    fi
    if [ -n "${ATTIC_TOKEN_FILE:-}" ] && [ -r "$ATTIC_TOKEN_FILE" ]; then
        IFS= read -r _af_token <"$ATTIC_TOKEN_FILE" || :
        case $_af_token in
            '' | -* | *[!A-Za-z0-9._-]*)
                _af_say "ignoring $ATTIC_TOKEN_FILE: it does not hold a JWT"
                _af_token=
                ;;
        esac
    elif [ -n "${ATTIC_TOKEN_FILE:-}" ]; then
        # The token Secret's volume is optional: attic-<env> writes the Secret after
        # runners-<env> is applied, and the job must not wait for it.
        _af_say "no CI token at $ATTIC_TOKEN_FILE yet (attic-<env> has not minted it):" \
            "pulling public caches anonymously, nothing will be pushed"
    fi
    _af_unreachable=
    for _af_cache in $ATTIC_CACHES; do
        _af_status=0
        if [ -z "$_af_unreachable" ]; then
            _af_body=$(_af_get "${ATTIC_ENDPOINT}_api/v1/cache-config/$_af_cache") ||
                _af_status=$?
            if [ "$_af_status" -eq 0 ] && _af_public_key "$_af_body"; then
                _af_keys="${_af_keys:+$_af_keys }$_af_key"
                _af_trusted="${_af_trusted:+$_af_trusted }$_af_cache"
                continue
            fi
        fi
        # An answer without a key, or an HTTP error (curl 22, GNU wget 8, busybox wget 1): the
        # server is up, ask it for the next cache. Anything else: it cannot be reached, and
        # each further cache would only wait for its own timeout.
        case $_af_status in
            0 | 1 | 8 | 22) ;;
            *) _af_unreachable=1 ;;
        esac
        _af_missing="${_af_missing:+$_af_missing }$_af_cache"
    done
    if [ -n "$_af_keys" ]; then
        _af_add_config "extra-trusted-public-keys = $_af_keys"
        _af_say "trusting the keys of: $_af_trusted"
    fi
    if [ -n "$_af_missing" ]; then
        _af_say "warning: no public key from $ATTIC_ENDPOINT for: $_af_missing" \
            "(unreachable, unknown or not readable); their paths are not trusted, Nix uses" \
            "the other substituters or builds"
    fi
    if [ -n "$_af_token" ]; then
        _af_endpoint_host
        if _af_dir=$(mktemp -d "${TMPDIR:-/tmp}/attic-flywheel.XXXXXX") &&
            (umask 077 && printf 'machine %s password %s\n' "$_af_host" "$_af_token" \
                >"$_af_dir/netrc"); then
            _af_add_config "netrc-file = $_af_dir/netrc"
        else
            _af_say "warning: could not write a netrc: private caches will answer 401"
        fi
    fi
}

_af_main || :
if [ -n "${_af_xtrace:-}" ]; then
    set -x
fi
unset -f _af_say _af_add_config _af_get _af_public_key _af_endpoint_host _af_main
unset -v _af_xtrace _af_token _af_keys _af_trusted _af_missing _af_unreachable _af_cache \
    _af_body _af_key _af_rest _af_sep _af_host _af_dir _af_url _af_status
