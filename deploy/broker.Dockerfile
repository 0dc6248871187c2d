# snowfall-broker container: the rendezvous broker.
#
#   docker build -t snowfall-broker -f deploy/broker.Dockerfile .
#   docker run -d --name snowfall-broker --restart unless-stopped \
#     -p 8080:8080 snowfall-broker
#
# The default command serves plain HTTP on :8080 for a TLS-terminating
# front, believing X-Forwarded-For only from private and loopback peers
# (the front on a container network), so that rate limits see the clients
# rather than the front. For Let's Encrypt instead, publish 80 and 443 and keep the
# certificate cache in a volume:
#   docker run ... -p 80:80 -p 443:443 -v snowfall-broker:/var/lib/snowfall-broker \
#     snowfall-broker -acme-hostnames broker.example.org -disable-geoip \
#     -acme-cert-cache /var/lib/snowfall-broker/acme
# Binding ports below 1024 needs CAP_NET_BIND_SERVICE (docker run
# --cap-add NET_BIND_SERVICE, or a port mapping as above). Country
# statistics need tor's geoip files: -v /usr/share/tor:/usr/share/tor:ro and
# drop -disable-geoip. See doc/operators.md.
ARG BUILDER_IMAGE=golang:1.26-bookworm

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY . .
ARG VERSION=""
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN set -e; \
    ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X github.com/snowfall-pt/snowfall/internal/version.Version=$VERSION"; fi; \
    go build -buildvcs=false -ldflags "$ldflags" -o /out/snowfall-broker ./broker/cmd/snowfall-broker; \
    /out/snowfall-broker -version; \
    mkdir -p /out/etc /out/var/lib/snowfall-broker; \
    echo 'snowfall:x:65532:65532:snowfall broker:/nonexistent:/sbin/nologin' > /out/etc/passwd; \
    echo 'snowfall:x:65532:' > /out/etc/group

# The static binary, CA certificates (ACME), an unprivileged user and a
# state directory for the ACME cache and metrics log.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=65532:65532 /out/var/lib/snowfall-broker /var/lib/snowfall-broker
COPY --from=build /out/snowfall-broker /snowfall-broker
USER 65532:65532
WORKDIR /var/lib/snowfall-broker
VOLUME ["/var/lib/snowfall-broker"]
EXPOSE 8080/tcp
ENTRYPOINT ["/snowfall-broker"]
CMD ["-addr", ":8080", "-disable-tls", "-disable-geoip", "-metrics-log", "/var/lib/snowfall-broker/metrics.log", \
     "-trust-forwarded", "-trusted-proxies", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,fc00::/7,::1/128"]
