# syntax=docker/dockerfile:1
#
# groupgate server image: a static binary on distroless, run as a numeric
# non-root user. No secret is baked in: mount the configuration at
# /etc/groupgate/config.yaml and the files it names (TechPass client
# credential, x-api-key, operator key, KEK) read-only, and the bbolt store on
# the /var/lib/groupgate volume. See "Deploying" in README.md.
#
#   docker build -t groupgate .
#
# deploy/deploy_test.go lints this file (stages, user, static build, exec-form
# entrypoint, no secrets); keep it passing when you change it.

ARG GO_VERSION=1.26

# ---- build: compile for the target platform on the build platform ----
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so a source change reuses the module layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/groupgate ./cmd/groupgate
# The data directory, owned by the runtime user, so a fresh named volume
# mounted on it starts with that owner (distroless has no shell to mkdir).
RUN mkdir -p /out/data && chmod 0700 /out/data

# ---- runtime: no shell, no package manager; CA certificates and tzdata only ----
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="groupgate" \
      org.opencontainers.image.description="Gateway letting downstream teams manage their TechPass groups" \
      org.opencontainers.image.source="https://github.com/groupgate/groupgate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/groupgate /groupgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/groupgate
# 65532 is distroless's "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/groupgate"]
# SIGTERM lets an upstream call in flight finish (shutdown_grace, 10s by
# default): give the container more than that, e.g. docker run --stop-timeout 30.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/groupgate"]
CMD ["-config", "/etc/groupgate/config.yaml"]
