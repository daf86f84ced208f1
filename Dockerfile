# syntax=docker/dockerfile:1
# The image of the control plane and of every region's runner (docs/deploying.md, "The image"):
# the same program, told what to do by its environment (the control plane's service sets
# TENANCY_WORKER_REGIONS=none, each runner its own region). Multi-stage: the build stage installs
# everything and compiles tenantctl; the runtime stage holds the production dependencies only,
# the compiled CLI, the Pulumi CLI and provider plugins at pinned versions, and runs as a non-root
# user. test/docker/dockerfile.test.ts checks this file's structure and versions statically
# (no docker engine where the tests run).

# Node: the version of .nvmrc. Pulumi: the CLI of the @pulumi/pulumi SDK in package-lock.json.
ARG NODE_VERSION=24.22.3
ARG PULUMI_VERSION=3.276.0

# --- build: all dependencies, the compiled tenantctl (dist/cli) -----------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY policy/package.json policy/
COPY bin bin
COPY automation automation
COPY cli cli
COPY infra infra
COPY plan plan
COPY policy policy
# `prepare` (bin/build-cli.mjs) bundles tenantctl into dist/cli; fail here if it did not.
RUN npm ci --no-audit --no-fund && test -f dist/cli/main.mjs && test -f dist/cli/manifest.json

# --- deps: production dependencies only ------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY policy/package.json policy/
# `prepare` finds no sources here and says so (esbuild is there: tsx depends on it); the compiled
# CLI comes from the build stage.
COPY bin/build-cli.mjs bin/
RUN npm ci --omit=dev --no-audit --no-fund

# --- pulumi: the CLI (checksum-verified) and the provider plugins of package-lock.json -------------
FROM node:${NODE_VERSION}-bookworm-slim AS pulumi
ARG PULUMI_VERSION
# sha256 of pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz, from the release's
# pulumi-${PULUMI_VERSION}-checksums.txt (https://github.com/pulumi/pulumi/releases). No default:
# it is pinned by whoever builds, never fetched beside the tarball it verifies.
ARG PULUMI_SHA256
ARG PULUMI_AWS_VERSION=7.48.0
ARG PULUMI_POSTGRESQL_VERSION=3.18.1
ARG PULUMI_RANDOM_VERSION=4.21.2
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
RUN test -n "${PULUMI_SHA256}" || { echo "build argument PULUMI_SHA256 is required: the sha256 of pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz from https://github.com/pulumi/pulumi/releases/download/v${PULUMI_VERSION}/pulumi-${PULUMI_VERSION}-checksums.txt" >&2; exit 1; }
RUN curl -fsSL -o /tmp/pulumi.tar.gz "https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz" \
 && echo "${PULUMI_SHA256}  /tmp/pulumi.tar.gz" | sha256sum -c - \
 && mkdir -p /opt/pulumi/bin \
 && tar -xzf /tmp/pulumi.tar.gz -C /opt/pulumi/bin --strip-components=1 \
 && rm /tmp/pulumi.tar.gz \
 && /opt/pulumi/bin/pulumi version | grep -qx "v${PULUMI_VERSION}"
ENV PULUMI_HOME=/opt/pulumi-home
RUN /opt/pulumi/bin/pulumi plugin install resource aws "${PULUMI_AWS_VERSION}" \
 && /opt/pulumi/bin/pulumi plugin install resource postgresql "${PULUMI_POSTGRESQL_VERSION}" \
 && /opt/pulumi/bin/pulumi plugin install resource random "${PULUMI_RANDOM_VERSION}"

# --- runtime ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# git: the control plane commits tenant files and exports each run's tree (automation/git).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git openssh-client && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tenancy \
 && useradd --system --uid 10001 --gid tenancy --home-dir /home/tenancy --create-home tenancy \
 && mkdir -p /data && chown tenancy:tenancy /data
WORKDIR /app
# Program files belong to root: the service can read them, not change them.
COPY package.json package-lock.json tsconfig.json Pulumi.yaml ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY bin bin
COPY automation automation
COPY cli cli
COPY infra infra
COPY plan plan
COPY policy policy
COPY docker/entrypoint.sh docker/entrypoint.sh
COPY --from=pulumi /opt/pulumi /opt/pulumi
COPY --from=pulumi --chown=tenancy:tenancy /opt/pulumi-home /home/tenancy/.pulumi
# Settings only, never secrets: DATABASE_URL, STRIPE_WEBHOOK_SECRET and the API keys come from
# the task definition's `secrets` (Secrets Manager), docs/control-plane.md.
ENV NODE_ENV=production \
    PATH=/opt/pulumi/bin:$PATH \
    PULUMI_HOME=/home/tenancy/.pulumi \
    TENANCY_PULUMI_ROOT=/opt/pulumi \
    TENANCY_DATA_DIR=/data/control-plane \
    TENANCY_REPO_DIR=/data/repo \
    PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["node", "--import", "tsx", "/app/automation/main.ts"]
