#!/bin/sh
# Build each installable given as an argument and push its closure to $ATTIC_CACHE.
# A failed build or push is reported and the next installable still runs; the exit status is
# non-zero if anything failed, so the Job shows up as failed without blocking anything else.
set -u

log() { printf '%s cache-warm: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

if ! client=$(nix build --no-link --print-out-paths "$ATTIC_CLIENT" | head -n 1) \
    || [ ! -x "$client/bin/attic" ]; then
    log "cannot build the attic client from $ATTIC_CLIENT"
    exit 1
fi
attic="$client/bin/attic"

# Pull from the cache too (substituter, public key and netrc into the user's nix.conf), so a
# re-run only builds and pushes what is missing.
"$attic" use "$ATTIC_CACHE" || log "attic use $ATTIC_CACHE failed; building without it"

failed=0
for installable in "$@"; do
    log "building $installable"
    if ! paths=$(nix build --no-link --print-out-paths "$installable"); then
        log "FAILED to build $installable"
        failed=$((failed + 1))
        continue
    fi
    if printf '%s\n' "$paths" | "$attic" push --stdin "$ATTIC_CACHE"; then
        log "pushed the closure of $installable"
    else
        log "FAILED to push $installable"
        failed=$((failed + 1))
    fi
done
log "done: $# installable(s), $failed failure(s)"
[ "$failed" -eq 0 ]
