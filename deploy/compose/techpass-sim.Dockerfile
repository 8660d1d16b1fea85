# syntax=docker/dockerfile:1
#
# The TechPass simulator (cmd/techpass-sim) for the compose example beside
# this file: a static binary on distroless, run as a numeric non-root user,
# like the server's image. Its credentials are mounted as files at run time.
# compose.yaml builds it with the repository as the context.
#
# deploy/deploy_test.go lints this file as it lints ../../Dockerfile.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/techpass-sim ./cmd/techpass-sim

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/techpass-sim /techpass-sim
USER 65532:65532
EXPOSE 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["/techpass-sim"]
