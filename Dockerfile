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

# The admission webhook (secrets_init/webhook, docs/webhook.md), a separate image:
#     docker build --target webhook -t secrets-init-webhook .
# Only the Python package and its `webhook` extra; it runs as a non-root user
# and writes nothing (deploy/webhook mounts its root read-only).
FROM python:3.11-slim AS webhook
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY secrets_init ./secrets_init
# What is installed is this source tree; the extra's bounds are in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[webhook]" && rm -rf /src
WORKDIR /
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["secrets-init-webhook"]

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
