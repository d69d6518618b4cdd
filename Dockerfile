# The dockroute image: the static binary and nothing else. `make image`
# builds the binary (CGO_ENABLED=0) into bin/dockroute-linux and then this
# image; the Dockerfile only copies it, so there is no base image to pull
# (GoReleaser's convention) and the image is a few MB.
FROM scratch
COPY bin/dockroute-linux /dockroute
# Default output directory for the Traefik file provider: mount a volume here.
WORKDIR /
ENTRYPOINT ["/dockroute"]
CMD ["run", "--traefik-dir", "/dynamic"]
