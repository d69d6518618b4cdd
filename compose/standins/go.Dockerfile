# A local stand-in for the golang:1.26 image the Dockerfiles build in, for a
# machine with no registry (this project's test machines): this machine's
# Go, where the official image keeps it, with its environment. Exec-form
# RUN lines need no shell, which it lacks.
FROM scratch
COPY go /usr/local/go
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin GOTOOLCHAIN=local
# go build needs a temporary directory.
WORKDIR /tmp
WORKDIR /go
ARG STAMP
LABEL dockroute.stand-in="1" dockroute.stand-in.stamp="$STAMP"
