# snowfall-server container: the bridge's WebSocket server, run as an
# unmanaged pluggable transport (the PT environment is set here rather
# than by a tor parent process). It relays to tor's ExtORPort, or to a load
# balancer in front of several tor instances that share identity keys (see
# doc/operators.md, "Bridge").
#
#   docker build -t snowfall-bridge -f deploy/bridge.Dockerfile .
#   docker run -d --name snowfall-bridge --restart unless-stopped --network host \
#     -e TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:10000 \
#     -e TOR_PT_AUTH_COOKIE_FILE=/var/lib/tor/extended_orport_auth_cookie \
#     -v /var/lib/tor/extended_orport_auth_cookie:/var/lib/tor/extended_orport_auth_cookie:ro \
#     snowfall-bridge
#
# The default command serves plain ws:// on :8080 for a TLS-terminating
# front; pass -acme-hostnames or -cert/-key to terminate TLS here (the ACME
# cache lives in TOR_PT_STATE_LOCATION, a volume).
ARG BUILDER_IMAGE=golang:1.26-bookworm

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY . .
ARG VERSION=""
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN set -e; \
    ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X github.com/snowfall-pt/snowfall/internal/version.Version=$VERSION"; fi; \
    go build -buildvcs=false -ldflags "$ldflags" -o /out/snowfall-server ./server/cmd/snowfall-server; \
    /out/snowfall-server -version; \
    mkdir -p /out/etc /out/var/lib/snowfall-server; \
    echo 'snowfall:x:65532:65532:snowfall bridge:/nonexistent:/sbin/nologin' > /out/etc/passwd; \
    echo 'snowfall:x:65532:' > /out/etc/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=65532:65532 /out/var/lib/snowfall-server /var/lib/snowfall-server
COPY --from=build /out/snowfall-server /snowfall-server
USER 65532:65532
VOLUME ["/var/lib/snowfall-server"]
# The pluggable-transport environment of an unmanaged server. Point
# TOR_PT_EXTENDED_SERVER_PORT (with TOR_PT_AUTH_COOKIE_FILE) or
# TOR_PT_ORPORT at tor.
ENV TOR_PT_MANAGED_TRANSPORT_VER=1 \
    TOR_PT_SERVER_TRANSPORTS=snowflake \
    TOR_PT_SERVER_BINDADDR=snowflake-0.0.0.0:8080 \
    TOR_PT_STATE_LOCATION=/var/lib/snowfall-server \
    TOR_PT_ORPORT=127.0.0.1:9001
EXPOSE 8080/tcp
ENTRYPOINT ["/snowfall-server"]
CMD ["-disable-tls"]
