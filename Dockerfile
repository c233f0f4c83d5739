# syntax=docker/dockerfile:1
# ApprovalPlus (审批+) production image: one image, two roles chosen by the command —
#   docker run … approval-plus:0.1.0 worker     Temporal worker (workflows + Feishu and NAC activities)
#   docker run … approval-plus:0.1.0 ingress    HTTP ingress on $PORT (webhooks, /healthz, /readyz, /metrics, /api)
# Both need TEMPORAL_ADDRESS (no embedded dev server in production). See docker-compose.yml and .env.example.
# The sources run through tsx as in development (no separate compile step); the workflow code is bundled here, once,
# so a worker starts without webpack (WORKFLOW_BUNDLE).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- deps: production node modules only (tsx is a runtime dependency; the Temporal core bridge ships prebuilt) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- build: the workflow bundle, from exactly the sources the runtime stage ships ----
FROM deps AS build
COPY . .
RUN node --import tsx scripts/bundle-workflows.ts /app/dist/workflow-bundle.js

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
WORKDIR /app
# Owned by root and read-only to the app user: the process cannot rewrite its own code.
COPY --from=build /app /app
# The only writable place (NAC simulator state in the sandbox profile); tsx caches in /tmp.
RUN mkdir -p /data && chown node:node /data
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 3000
ENTRYPOINT ["node", "bin/approval-plus.mjs"]
CMD ["ingress"]
