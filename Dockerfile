# Loom Auth: the host and its auth component in one slim image.
#
# Not built on the development machines (they run no container engine); every
# build step below is one that `just test` runs there. Build with
#   docker build -t loom-auth .
# Run one host on SQLite in a volume:
#   docker run -p 8000:8000 -v loom-auth:/var/lib/loom-auth loom-auth
# or several on PostgreSQL, sharing one master key (see README, "Deploying"):
#   docker run -e DATABASE_URL=postgres://loom:…@db/loom -e LOOM_AUTH_MASTER_KEY_FILE=/run/secrets/master-key …

FROM rust:1-bookworm AS build
RUN rustup target add wasm32-wasip2 && cargo install --locked just
WORKDIR /src
COPY . .
# The component, signed with a key pair made for this build (its secret key
# stays in this stage), then the host.
RUN just build-guest && cargo build --release -p host-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/loom-auth --create-home loom \
    && chmod 0700 /var/lib/loom-auth
COPY --from=build /src/target/release/host-server /usr/local/bin/host-server
COPY --from=build /src/target/components/auth-guest.wasm /src/target/components/auth-guest.wasm.minisig /opt/loom-auth/
COPY --from=build /src/target/signing/dev.pub /opt/loom-auth/trusted-signers
ENV LOOM_AUTH_BIND=0.0.0.0:8000 \
    LOOM_AUTH_DATA_DIR=/var/lib/loom-auth \
    LOOM_AUTH_COMPONENT=/opt/loom-auth/auth-guest.wasm \
    LOOM_AUTH_TRUSTED_SIGNERS=/opt/loom-auth/trusted-signers
USER loom
VOLUME /var/lib/loom-auth
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["curl", "-fsS", "http://127.0.0.1:8000/healthz"]
# SIGTERM (docker stop) lets requests in flight finish within --shutdown-grace (10 s, docker's own wait).
STOPSIGNAL SIGTERM
ENTRYPOINT ["host-server"]
