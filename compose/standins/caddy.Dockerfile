# A local stand-in for the caddy:2 image the Caddy stack names, for a
# machine with no registry (this project's test machines): the static Caddy
# binary `make caddy` builds, where the official image keeps it, with the
# official image's config and data directories. `make standins` builds it
# only where no real caddy:2 image exists.
FROM scratch
COPY caddy /usr/bin/caddy
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
ARG STAMP
LABEL dockroute.stand-in="1" dockroute.stand-in.stamp="$STAMP"
WORKDIR /srv
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/caddy.json"]
