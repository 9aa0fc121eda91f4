#!/bin/sh
# Image entrypoint: runs `node /opt/rrdns/dist/main.js "$@"` as the rrdns user,
# with CAP_NET_BIND_SERVICE when the container allows it, so that rrdns can
# bind port 53 without being root. Both paths end in `exec`, so node replaces
# this shell (same PID: PID 1 in a container) and gets SIGTERM itself.
set -eu
MAIN=/opt/rrdns/dist/main.js
NODE="$(command -v node)"
# A young generation of at most 1 MB per semi-space on the answering thread
# (V8 otherwise grows it while zones load and under load, and keeps it; the
# answer path allocates next to nothing per query): the same flag as
# `npm start`. With 10,000 zones, 8 MB semi-spaces were ~100 MB less RSS than
# none, 1 MB another ~5 MB less after 120 reloads. The probing thread sets its
# own (src/health/probing-heap.ts). On the command line, so an operator's
# NODE_OPTIONS adds to it.
V8_FLAGS=--max-semi-space-size=1

# capsh carries cap_net_bind_service as a file capability (permitted +
# inheritable); it makes it ambient, which survives the exec into node. That
# fails under no-new-privileges (e.g. Kubernetes allowPrivilegeEscalation:
# false) or when the capability is dropped: then run node without it, which
# still serves ports >= 1024 (set RRDNS_LISTEN).
if /usr/sbin/capsh --inh=cap_net_bind_service --addamb=cap_net_bind_service --shell=/bin/true -- 2>/dev/null; then
  exec /usr/sbin/capsh --inh=cap_net_bind_service --addamb=cap_net_bind_service --shell="$NODE" -- $V8_FLAGS "$MAIN" "$@"
fi
echo "rrdns entrypoint: CAP_NET_BIND_SERVICE not available (no-new-privileges or dropped); ports below 1024 cannot be bound" >&2
exec "$NODE" $V8_FLAGS "$MAIN" "$@"
