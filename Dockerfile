# syntax=docker/dockerfile:1
# Ponder, CPU image. Build:  docker build -t ponder:cpu .
# Run:    docker run -p 8000:8000 -v /path/to/models:/models ponder:cpu --model /models/model.gguf
# The base images are build arguments so a mirror (or a locally made image) can stand in.
ARG BUILDER_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never
# 1. Dependencies only: manifests and empty sources. This layer is rebuilt only when a
#    manifest or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates/ponder/Cargo.toml crates/ponder/Cargo.toml
COPY crates/ponder-engine/Cargo.toml crates/ponder-engine/Cargo.toml
COPY crates/ponder-kernels/Cargo.toml crates/ponder-kernels/Cargo.toml
COPY crates/ponder-models/Cargo.toml crates/ponder-models/Cargo.toml
COPY crates/ponder-server/Cargo.toml crates/ponder-server/Cargo.toml
COPY crates/ponder-structured/Cargo.toml crates/ponder-structured/Cargo.toml
COPY crates/ponder-sweep/Cargo.toml crates/ponder-sweep/Cargo.toml
COPY crates/ponder-thinking/Cargo.toml crates/ponder-thinking/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
COPY docker/stub-sources.sh docker/stub-sources.sh
RUN sh docker/stub-sources.sh && cargo build --release --locked --bin ponder
# 2. The sources.
COPY crates crates
COPY tests tests
RUN touch crates/*/src/*.rs && cargo build --release --locked --bin ponder \
    && strip target/release/ponder

FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/ponder ponder \
    && mkdir -p /models /cache && chown ponder:ponder /models /cache
COPY --from=builder /src/target/release/ponder /usr/local/bin/ponder
USER ponder
ENV PONDER_HOST=0.0.0.0 \
    PONDER_PORT=8000 \
    PONDER_MODEL=/models/model.gguf \
    PONDER_CACHE=/cache
EXPOSE 8000
VOLUME ["/models", "/cache"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["ponder", "health"]
ENTRYPOINT ["ponder", "serve"]
