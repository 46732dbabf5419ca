# syntax=docker/dockerfile:1
#
# corsproc container image: a static binary on distroless, running as non-root.
#
#   docker build -t corsproc:dev \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
#
# No HEALTHCHECK: the image has no shell or curl to run one, and the
# orchestrators probe it themselves (Kubernetes: gRPC probes on the
# grpc.health.v1.Health service at :9001; Envoy: gRPC health checks on its
# ext_proc cluster). See docs/deploy.md.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Module downloads first, so that a source change reuses this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/corsproc/corsproc/internal/buildinfo.version=${VERSION} -X github.com/corsproc/corsproc/internal/buildinfo.commit=${COMMIT}" \
      -o /out/corsproc ./cmd/corsproc

# static-debian12:nonroot has CA certificates and tzdata, no shell, and runs
# as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/corsproc /usr/local/bin/corsproc
USER 65532:65532
# 9001: ext_proc gRPC (and grpc.health.v1.Health); 9002: admin HTTP
# (/metrics, /healthz, /readyz, /config, /explain).
EXPOSE 9001 9002
ENTRYPOINT ["/usr/local/bin/corsproc"]
# With no --config (or CORSPROC_CONFIG) serve runs the embedded development
# policy; mount a policy and set CORSPROC_CONFIG=/etc/corsproc/policy.yaml.
CMD ["serve"]
