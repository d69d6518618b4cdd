# The dockroute image: the static binary and nothing else. `make image`
# builds the binary (CGO_ENABLED=0) into bin/dockroute-linux and then this
# image; the Dockerfile only copies it, so there is no base image to pull
# (GoReleaser's convention) and the image is a few MB.
FROM scratch
COPY bin/dockroute-linux /dockroute
# Default output directory for the Traefik file provider: mount a volume
# here. It belongs to the user dockroute runs as, so a new named volume
# mounted on it does too.
COPY --chown=65532:65532 bin/image/dynamic /dynamic
WORKDIR /
# An unprivileged user. It reaches the Docker socket through the socket's
# group: docker run --group-add $(stat -c %g /var/run/docker.sock) ...
USER 65532:65532
ENTRYPOINT ["/dockroute"]
CMD ["run", "--traefik-dir", "/dynamic"]
