# syntax=docker/dockerfile:1
# The gateway's container image. test/image.test.ts reads this file and assembles the runtime stage's files
# exactly as written here (without a container engine), then starts them in production mode: keep the two in step.

# Node.js 24 (the current LTS), pinned to one release: the one .ci/run tests on (NODE_VERSION there; the image test
# checks that they agree). Pin the digest as well where you build: `docker buildx imagetools inspect
# node:24.21.0-trixie-slim` prints it; then use node:24.21.0-trixie-slim@sha256:<index digest> here. (The image was
# written where no registry could be asked for it.)
ARG NODE_IMAGE=node:24.21.0-trixie-slim

# Build: compile TypeScript with the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies, compiled JavaScript and the migrations, as an unprivileged user.
FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="auth-gateway" \
      org.opencontainers.image.description="Login gateway: OAuth 2.0 / OpenID Connect upstream, its own signed JWTs and rotating refresh tokens" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/${NODE_IMAGE}"
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 DATA_DIR=/data
# tini as PID 1 (see ENTRYPOINT)
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# The embedded database (only without DATABASE_URL) lives here; the application files stay root-owned, read-only
# for the user the gateway runs as.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# An init as PID 1, so that `docker stop` works at every moment. The gateway handles SIGTERM itself (readiness 503,
# drain, close, exit 0), but only from the moment its handlers are installed, after configuration, migrations and
# the first key load. The kernel drops a signal sent to a namespace's PID 1 that has no handler for it, so a node
# running as PID 1 would ignore a SIGTERM that arrives during start-up and be killed only at the end of the stop
# timeout. Under tini node is PID 2: a signal before the handlers exist ends it at once, one after goes to the
# gateway's graceful shutdown. (tini also reaps zombies, though the gateway starts no child processes.) With it in
# the image, `docker run --init` is not needed.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/server.js"]
