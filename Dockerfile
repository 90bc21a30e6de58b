# syntax=docker/dockerfile:1
#
# The secrets-init image: FROM scratch, holding nothing but /secrets-init.
# Use it to copy the binary into your own image
#     COPY --from=secrets-init /secrets-init /usr/local/bin/secrets-init
# or as a Kubernetes initContainer running `/secrets-init copy /helper/bin`.
#
# Two ways to build it (README, "Use it in Docker"):
#   from source, in the builder stage below (the default, last stage):
#     docker build -t secrets-init .
#   from a dist/secrets-init that `scripts/build-binary` made already, with no
#   base image to pull (this is what CI builds and tests, with podman):
#     podman build --target prebuilt -t secrets-init .
# BuildKit and podman skip the stages that the chosen target does not need.
# The two final stages differ only in where /secrets-init comes from;
# tests/container/test_dockerfile.py keeps the rest identical.

# The builder runs the very script CI runs, so the image and CI's binary cannot
# drift apart. The binary carries its own glibc, and it comes from this image.
FROM debian:bookworm-slim AS builder
WORKDIR /src
COPY . .
# A dist/ copied in with the context is not this build's output: start clean.
RUN rm -rf dist build && ./scripts/build-binary

# Any non-root uid works; 65532 is the usual "nonroot" of distroless images.
# To run a program, the binary unpacks itself on first start into the first
# writable directory that allows executables; this image has none of its own,
# so give it one: a tmpfs mounted with exec at /tmp, or a volume named by
# SECRETS_INIT_CACHE. `copy DIR` unpacks nothing and needs only DIR.
FROM scratch AS prebuilt
COPY --chmod=0755 dist/secrets-init /secrets-init
USER 65532:65532
ENTRYPOINT ["/secrets-init"]

FROM scratch AS from-source
COPY --from=builder --chmod=0755 /src/dist/secrets-init /secrets-init
USER 65532:65532
ENTRYPOINT ["/secrets-init"]
