# syntax=docker/dockerfile:1
# The process-load simulator, run by LoadSimulationJobs.
# Build from the repository root (BuildKit):
#   docker build -f deploy/docker/phoenix-sim.Dockerfile -t phoenix-sim .

# Build: the workspace's locked dependencies, release profile, only this binary.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p phoenix-sim --bin phoenix-sim \
    && install -D -m 0755 target/release/phoenix-sim /out/phoenix-sim

# Run: glibc and libgcc only, no shell, as the unprivileged user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/phoenix-sim /usr/local/bin/phoenix-sim
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/phoenix-sim"]
