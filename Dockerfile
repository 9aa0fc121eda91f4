# rrdns: round-robin authoritative DNS.
#
#   docker build -t rrdns .
#   docker run -d --name rrdns -p 53:53/udp -p 53:53/tcp \
#     -v "$PWD/zones:/etc/rrdns/zones:ro" -v rrdns-state:/var/lib/rrdns rrdns
#
# Three stages on the same base: `build` compiles src/ to dist/ with the dev
# dependencies (TypeScript), `deps` installs the production dependencies only,
# and the final image gets dist/ and that node_modules, nothing else (no .ts
# sources, no compiler, no test tools, no npm cache).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Only TypeScript is needed here: the addon is built in the deps stage.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
# `npm ci` runs the install script, which builds the batched UDP addon
# (native/udp_batch.c, recvmmsg/sendmmsg) and the malloc_trim one
# (native/memory.c) with node-gyp against this Node's own
# headers (/usr/local/include/node). The compiler stays in this stage; only the
# built .node file reaches the image. Outside Docker a failed addon build only
# means node:dgram (the install goes on); here the image build fails instead
# (the test -f below), so no image ships without the batched path by accident.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
# The official image carries the headers (/usr/local/include/node); an image
# without them (a stand-in) gets the same version's from the npm registry's
# node-linux-<arch> package (the official tarball, include/ and all).
RUN headers=/usr/local \
 && if [ ! -f "$headers/include/node/node_api.h" ]; then \
      arch="$(node -p process.arch)" \
      && npm install --no-save --no-audit --no-fund --prefix /tmp/node-headers "node-linux-$arch@$(node -p process.versions.node)" >/dev/null \
      && headers="/tmp/node-headers/node_modules/node-linux-$arch"; \
    fi \
 && npm_config_nodedir="$headers" npm ci --omit=dev --no-audit --no-fund \
 && test -f native/build/Release/udp_batch.node \
 && test -f native/build/Release/memory.node

FROM node:24-bookworm-slim

# Port 53 is privileged and rrdns runs as a non-root user. Docker's own
# networking lets any user bind low ports (net.ipv4.ip_unprivileged_port_start=0
# in the container), but host networking, Podman and Kubernetes usually do not,
# so rrdns gets the one capability it needs, CAP_NET_BIND_SERVICE, and nothing
# else. It is not set on the node binary itself: changing node's file
# attributes would copy the 126 MB binary into a new layer, and a node with
# file capabilities runs in secure mode (it ignores NODE_OPTIONS and
# NODE_EXTRA_CA_CERTS). Instead capsh (from libcap2-bin, 100 kB) holds the
# capability as permitted+inheritable, and docker/entrypoint.sh has it raise
# it as an ambient capability and exec node, which keeps it across the exec.
# If you drop capabilities keep this one: --cap-drop ALL --cap-add
# NET_BIND_SERVICE. Under no-new-privileges file capabilities do not apply:
# the entrypoint then says so and runs node without it (use a port >= 1024).
#
# fping sends the echoes of `type: icmp` checks (rrdns starts it only when a
# zone has one). Debian's package gives it CAP_NET_RAW as a file capability
# (its postinst runs setcap, from libcap2-bin, which it depends on), so it
# opens raw ICMP sockets although rrdns runs as the rrdns user. That needs
# NET_RAW in the container's bounding set: Docker's default set has it; with
# --cap-drop ALL add --cap-add NET_RAW too, or exec of fping fails (EPERM, the
# icmp checks then fail and rrdns logs why). Under no-new-privileges the file
# capability is ignored and fping falls back to unprivileged ICMP sockets,
# which Docker allows in its containers (net.ipv4.ping_group_range).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin fping \
 && setcap cap_net_bind_service=+ip /usr/sbin/capsh \
 && getcap /usr/bin/fping | grep -q cap_net_raw \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10053 rrdns \
 && useradd --no-log-init --uid 10053 --gid rrdns --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rrdns \
 && install -d -o rrdns -g rrdns -m 0750 /var/lib/rrdns

# Every setting is an environment variable (flags given after the image name win);
# `docker run --rm rrdns help` lists them all. The ones that matter most here:
#   RRDNS_LISTEN              UDP+TCP addresses, comma-separated
#   RRDNS_ZONES               the zones directory (mount yours over it; watched for edits)
#   RRDNS_ADMIN               admin API/metrics/status page, HOST:PORT or 'off'; it
#                             stays inside the container unless you set 0.0.0.0:8053
#                             and RRDNS_ADMIN_TOKEN_FILE (a mounted file holding the token)
#   RRDNS_LOG_LEVEL           fatal|error|warn|info|debug|trace|silent
#   RRDNS_UDP_THREADS         threads answering UDP; auto (the image's default) = 1 on up to
#                             2 cores, else one per core; 0 = one per core; N = N
#   RRDNS_STATE_DIR           API overrides and served SOA serials, kept across restarts
#                             (a volume: keep it, or a drain and the serials are forgotten
#                             with the container; a bind mount must be writable by uid 10053)
#   RRDNS_WATCH, RRDNS_WATCH_POLL_MS, RRDNS_SHUTDOWN_GRACE_MS, RRDNS_IDENTITY,
#   RRDNS_XFR_MAX_CONCURRENT, RRDNS_TCP_*: see `help`
ENV NODE_ENV=production \
    RRDNS_LISTEN=0.0.0.0:53 \
    RRDNS_ZONES=/etc/rrdns/zones \
    RRDNS_ADMIN=127.0.0.1:8053 \
    RRDNS_LOG_LEVEL=info \
    RRDNS_UDP_THREADS=auto \
    RRDNS_STATE_DIR=/var/lib/rrdns

WORKDIR /opt/rrdns
# package.json says "type": "module", which makes dist/*.js ES modules.
COPY package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=deps /src/native/build/Release/udp_batch.node ./native/build/Release/udp_batch.node
COPY --from=deps /src/native/build/Release/memory.node ./native/build/Release/memory.node
COPY docker/entrypoint.sh ./entrypoint.sh
# The example zone, as default content; a mounted directory replaces it.
COPY zones /etc/rrdns/zones
VOLUME ["/etc/rrdns/zones"]
# Owned by rrdns (created above): a new named or anonymous volume starts with that ownership.
VOLUME ["/var/lib/rrdns"]

USER rrdns
EXPOSE 53/udp 53/tcp

# Liveness through the admin listener, with node (the slim image has no curl).
# With RRDNS_ADMIN=off there is nothing to ask, so the check reports healthy
# while the process runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const a=process.env.RRDNS_ADMIN||'127.0.0.1:8053';if(a==='off')process.exit(0);fetch('http://'+a+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),e=>{console.error(String(e));process.exit(1)})"]

# Exec form, and the entrypoint script execs node in its own place (through
# capsh, which execs too): node is PID 1 and receives SIGTERM itself (rrdns
# closes its sockets and exits 0). CMD is passed on to main.js, so
# `docker run rrdns check /etc/rrdns/zones` validates the zones instead.
ENTRYPOINT ["/opt/rrdns/entrypoint.sh"]
CMD ["serve"]
