# A local stand-in for the traefik:v3 image the Traefik stack names, for a
# machine with no registry (this project's test machines): the real Traefik
# binary `make traefik` builds, and nothing else. `make standins` builds it
# only where no real traefik:v3 image exists.
FROM scratch
COPY traefik /traefik
ARG STAMP
LABEL dockroute.stand-in="1" dockroute.stand-in.stamp="$STAMP"
EXPOSE 80
ENTRYPOINT ["/traefik"]
