# syntax=docker/dockerfile:1
# leadbase in a container: README.md, "Running under Docker".
#
#   docker build -t leadbase .
#   docker run -d --name leadbase -p 8080:8080 -v leadbase-data:/data --stop-timeout 40 leadbase
#
# The builder is Debian 12 like the runtime, so the binary needs no newer glibc than the image has.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
# busybox's wget is the health probe (distroless has no curl or wget): one static binary, copied
# alone into the runtime image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends busybox-static \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/leadbase /out/leadbase \
 && install -d -o 65532 -g 65532 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/leadbase /usr/local/bin/leadbase
COPY --from=builder /bin/busybox /usr/local/bin/busybox
# Owned by the runtime user, so a new named volume mounted here starts writable by it.
COPY --from=builder --chown=65532:65532 /out/data /data
# Configuration, not code: every key can be set as LEADBASE_<SECTION>_<KEY> (config.example.toml).
ENV LEADBASE_SERVER_LISTEN=0.0.0.0:8080 \
    LEADBASE_STORAGE_PATH=/data/leadbase.redb
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# SIGTERM drains in-flight requests (up to 30 s) and flushes queued writes: stop with -t 40.
STOPSIGNAL SIGTERM
# 200 while writes can commit and the data file answers a read; 503 (wget exits 1) otherwise.
# (Debian's busybox wget has no -T: --timeout bounds the probe.)
# The port is this image's listen port: change both together.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/leadbase"]
CMD ["serve"]
