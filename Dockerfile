# The dockroute image, built from this repository with nothing but Docker:
#   docker build -t dockroute/dockroute:dev .
# (the compose stacks do it for you: `build: ../..`). The first stage
# compiles the static binary in the official Go image; the image itself is
# that binary and an empty output directory, FROM scratch, a few MB.
# RUN lines use the exec form, so no shell is needed in the build image.
ARG GO_IMAGE=golang:1.26
FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOOS=linux
# The modules first, in a layer of their own: a source change does not
# download them again.
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY cmd cmd
COPY provider provider
COPY render render
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/dockroute", "./cmd/dockroute"]
# WORKDIR makes the directory: the image's default output directory.
WORKDIR /out/dynamic

FROM scratch
COPY --from=build /out/dockroute /dockroute
# Default output directory for the Traefik file provider: mount a volume
# here. It belongs to the user dockroute runs as, so a new named volume
# mounted on it does too.
COPY --from=build --chown=65532:65532 /out/dynamic /dynamic
WORKDIR /
# An unprivileged user. It reaches the Docker socket through the socket's
# group: docker run --group-add $(stat -c %g /var/run/docker.sock) ...
USER 65532:65532
ENTRYPOINT ["/dockroute"]
CMD ["run", "--traefik-dir", "/dynamic"]
