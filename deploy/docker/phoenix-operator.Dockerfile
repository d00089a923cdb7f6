# syntax=docker/dockerfile:1
# The Kubernetes operator (reconcilers, Kubernetes executor).
# Build from the repository root (BuildKit):
#   docker build -f deploy/docker/phoenix-operator.Dockerfile -t phoenix-operator .

# Build: the workspace's locked dependencies, release profile, only this binary.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p phoenix-operator --bin phoenix-operator \
    && install -D -m 0755 target/release/phoenix-operator /out/phoenix-operator

# Run: glibc and libgcc only, no shell, as the unprivileged user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/phoenix-operator /usr/local/bin/phoenix-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/phoenix-operator"]
