# rrdns: round-robin authoritative DNS. Node runs the TypeScript sources directly
# (native type stripping), so the image needs no build step.
FROM node:24-bookworm-slim

ENV NODE_ENV=production \
    RRDNS_ZONES=/etc/rrdns/zones \
    RRDNS_LISTEN=0.0.0.0:5353 \
    RRDNS_LOG_LEVEL=info

WORKDIR /opt/rrdns
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY zones /etc/rrdns/zones

# Runs unprivileged on 5353; publish it as 53 (docker run -p 53:5353/udp -p 53:5353/tcp).
RUN useradd --system --no-create-home --home-dir /opt/rrdns --shell /usr/sbin/nologin rrdns
USER rrdns
EXPOSE 5353/udp 5353/tcp
ENTRYPOINT ["node", "/opt/rrdns/src/main.ts"]
CMD ["serve"]
