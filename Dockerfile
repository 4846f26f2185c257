# vpc-probe: one static binary (rustls with webpki roots built in, so no CA
# store is needed) in an empty image, running as a non-root user.
#
#   docker build -t vpc-probe .                   # compiles in the builder stage
#   scripts/build-image                           # no Docker, no registry: buildah
#                                                 # with --build-arg BINARY=prebuilt
#
# BINARY picks where /vpc-probe comes from: "compiled" builds it below;
# "prebuilt" takes target/static/vpc-probe from the build context (a static
# binary made by scripts/build-image). Either way the final stage, the one
# users get, is the same.
ARG BINARY=compiled

# relocation-model=static: a static non-PIE binary, 0.5 MB smaller than
# static-pie (no .rela.dyn); the stack, heap and mappings stay randomised
# (BENCHMARKS.md, "Image size").
FROM docker.io/library/rust:1.95-slim-bookworm AS compiled
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/vpc-probe /out/vpc-probe

FROM scratch AS prebuilt
COPY target/static/vpc-probe /out/vpc-probe

FROM ${BINARY} AS binary

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="vpc-probe" \
      org.opencontainers.image.description="In-VPC connectivity validation: DNS, TCP, PostgreSQL, Redis/Valkey and HTTP checks with classified failures" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/glimpse/vpc-probe"
COPY --from=binary /out/vpc-probe /vpc-probe
COPY checks/production.toml checks/staging.toml /etc/vpc-probe/
ENV VPC_PROBE_SUITE=/etc/vpc-probe/production.toml
USER 65532:65532
EXPOSE 9102
ENTRYPOINT ["/vpc-probe"]
CMD ["check"]
