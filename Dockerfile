# snowfall-proxy container: a Snowflake-compatible proxy that joins the Tor
# Snowflake network with its defaults.
#
#   docker build -t snowfall-proxy .
#   docker run -d --name snowfall-proxy --restart unless-stopped --network host snowfall-proxy
#
# Flags after the image name replace the default arguments, e.g.
#   docker run ... snowfall-proxy -capacity 10 -summary-interval 30m
# See doc/proxy.md ("Container").
#
# The builder image is an argument so that the same file builds offline from
# a local toolchain image (scripts/container-check.sh does that).
ARG BUILDER_IMAGE=golang:1.26-bookworm

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
# With a vendor/ directory in the build context (an offline build) nothing
# is fetched; otherwise go build downloads the modules it needs.
COPY . .
ARG VERSION=""
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN set -e; \
    ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X github.com/snowfall-pt/snowfall/internal/version.Version=$VERSION"; fi; \
    go build -buildvcs=false -ldflags "$ldflags" -o /out/snowfall-proxy ./proxy/cmd/snowfall-proxy; \
    /out/snowfall-proxy -version; \
    mkdir -p /out/etc /out/tmp; \
    echo 'snowfall:x:65532:65532:snowfall proxy:/nonexistent:/sbin/nologin' > /out/etc/passwd; \
    echo 'snowfall:x:65532:' > /out/etc/group

# The final image holds the static binary, CA certificates (for the broker's
# HTTPS and the relays' WSS) and an unprivileged user; nothing else.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=65532:65532 /out/tmp /tmp
COPY --from=build /out/snowfall-proxy /snowfall-proxy
USER 65532:65532
# Prometheus metrics, when enabled with -metrics -metrics-address 0.0.0.0.
EXPOSE 9999/tcp
ENTRYPOINT ["/snowfall-proxy"]
# The defaults join Tor's Snowflake network; a summary line every hour.
CMD ["-summary-interval", "1h"]
