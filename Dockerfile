# syntax=docker/dockerfile:1
# ApprovalPlus (审批+) production image: one image, two roles chosen by the command —
#   docker run … approval-plus:0.1.0 worker     Temporal worker (workflows + platform and NAC activities)
#   docker run … approval-plus:0.1.0 ingress    HTTP ingress on $PORT (webhooks, /healthz, /readyz, /metrics, /api)
# Both need TEMPORAL_ADDRESS (no embedded dev server in production). See docker-compose.yml and .env.example.
# It runs compiled JavaScript (tsc → dist/, `npm run build`), not TypeScript through tsx, and a workflow bundle built
# here, once, from the same sources, so a worker starts without webpack (WORKFLOW_BUNDLE).
# Node 24 LTS (maintenance until 2028-04-30, nodejs/docker-node versions.json); the Temporal SDK 1.24 supports 20, 22
# and 24. glibc (bookworm), not Alpine: @temporalio/core-bridge ships only *-unknown-linux-gnu builds. 24.19.0 is the
# newest 24.x in nodejs/docker-node's 24/bookworm-slim/Dockerfile we could read (f27d936f, 2026-08-19); a newer patch
# is a `--build-arg NODE_IMAGE=node:24.x.y-bookworm-slim` away (deploy/README.md "Versions").
ARG NODE_IMAGE=node:24.19.0-bookworm-slim

# ---- deps: production node modules only (the Temporal core bridge ships prebuilt) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- build: dist/ (tsc) and the workflow bundle, with the dev dependencies (typescript), from one source tree ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node scripts/build.mjs /app/dist \
 && node --import tsx scripts/bundle-workflows.ts /app/dist/workflow-bundle.js

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# The slim image purges its CA bundle after installing Node (nodejs/docker-node 24/bookworm-slim/Dockerfile). The
# worker's Temporal connection (Rust core) loads the OS root store for TLS: Temporal Cloud, TEMPORAL_TLS=true.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The heap limit belongs with the container's memory limit (~75 %), so it is set where that is: docker-compose.yml
# NODE_OPTIONS per service, or your orchestrator's env next to its memory limit (deploy/README.md).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
WORKDIR /app
# Owned by root and read-only to the app user: the process cannot rewrite its own code.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY deploy/healthcheck.sh ./deploy/healthcheck.sh
# `docker compose exec worker approval-plus status <instance>` (the operator CLI, compiled like the rest).
RUN printf '#!/bin/sh\nexec node /app/dist/cli/main.js "$@"\n' > /usr/local/bin/approval-plus \
 && chmod 0755 /usr/local/bin/approval-plus /app/deploy/healthcheck.sh \
 && mkdir -p /data && chown node:node /data
# The only writable place (NAC simulator state in the sandbox profile).
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 3000
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["ingress"]
