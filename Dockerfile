# syntax=docker/dockerfile:1
# One image for every callpulse service: `callpulse processor|sink|adapters|simulate|...`.
#   docker build -t callpulse:local .

FROM rust:1-bookworm AS build
# rdkafka builds its bundled librdkafka from source (needs a C toolchain, make,
# perl, zlib headers: all present in rust:1-bookworm); cmake for crates that want it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p callpulse-cli \
 && install -D -m 0755 target/release/callpulse /out/callpulse

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/callpulse --create-home callpulse
COPY --from=build /out/callpulse /usr/local/bin/callpulse
# Reference data the services read at run time (organisations, bank holidays).
COPY data/ /usr/share/callpulse/data/
USER callpulse
WORKDIR /var/lib/callpulse
ENV RUST_LOG=info
ENTRYPOINT ["callpulse"]
CMD ["--help"]
