# syntax=docker/dockerfile:1
# The REST/gRPC API server and the phoenix CLI (`phoenix serve`).
# Build from the repository root (BuildKit):
#   docker build -f deploy/docker/phoenix-api.Dockerfile -t phoenix-api .

# Build: the workspace's locked dependencies, release profile, only this binary.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p phoenix-api --bin phoenix \
    && install -D -m 0755 target/release/phoenix /out/phoenix \
    && mkdir -p /out/data

# Run: glibc and libgcc only, no shell, as the unprivileged user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/phoenix /usr/local/bin/phoenix
# The SQLite database lives in /var/lib/phoenix, owned by the runtime user (mount a volume
# there to keep it). The API listens on 127.0.0.1 unless told otherwise; in a container it
# must bind all interfaces.
COPY --from=build --chown=65532:65532 /out/data /var/lib/phoenix
USER 65532:65532
ENV PHOENIX_BIND=0.0.0.0:8080 \
    PHOENIX_DATABASE_URL=sqlite:///var/lib/phoenix/phoenix.db
WORKDIR /var/lib/phoenix
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/phoenix"]
CMD ["serve"]
