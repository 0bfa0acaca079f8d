# syntax=docker/dockerfile:1
#
# pt-referral-fhir: FHIR R4 referral service on SQLite.
#
#   docker build -t pt-referral-fhir .
#   docker run -p 8080:8080 -v referrals:/data pt-referral-fhir
#
# The build stage runs what CI runs before its tests (`npm ci` from the lockfile, then
# `npm run build`, i.e. tsc -p tsconfig.build.json); the runtime stage keeps only the compiled
# output and production dependencies. Both stages use the same base image, so the better-sqlite3
# native module compiled (or downloaded) in the first one matches the glibc and Node ABI of the
# second.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 falls back to compiling from source when no prebuilt binary can be downloaded.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATABASE_URL=sqlite:/data/referrals.sqlite \
    LOG_LEVEL=info
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# The service's StructureDefinitions, CodeSystems and ValueSets, read at start-up (dist/../profiles).
COPY --chown=root:root profiles ./profiles
# The code stays root-owned and read-only to the service; only /data is writable by it.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# No curl in the slim image: Node's own fetch asks /healthz on the port the service listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node directly, not `npm start`: npm would rebuild (prestart) and would not forward SIGTERM, which
# the service handles to close the database cleanly.
CMD ["node", "dist/main.js"]
