# modgate: a Go module gateway. Build: docker build -t modgate .
# Run:   docker run --read-only -v modgate-store:/var/lib/modgate -p 8080:8080 modgate
#
# Two stages: the first builds a virtualenv with modgate and its pinned
# dependencies; the second is the runtime with git (for the direct source) and
# nothing else. The root filesystem can be read-only: the store lives on the
# /var/lib/modgate volume and git's HOME points there too.

FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/modgate \
    && /opt/modgate/bin/pip install --no-cache-dir --disable-pip-version-check /src

FROM python:3.11.7-slim-bookworm
LABEL org.opencontainers.image.title="modgate" \
      org.opencontainers.image.description="Go module gateway: GOPROXY server, checksum databases, build doctor" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/modgate \
        --shell /usr/sbin/nologin modgate \
    && install -d -o modgate -g modgate -m 0750 /var/lib/modgate
COPY --from=build /opt/modgate /opt/modgate
ENV PATH=/opt/modgate/bin:$PATH \
    HOME=/var/lib/modgate \
    PYTHONDONTWRITEBYTECODE=1 \
    MODGATE_LISTEN=0.0.0.0:8080 \
    MODGATE_STORE=/var/lib/modgate/store
USER 10001:10001
WORKDIR /var/lib/modgate
VOLUME ["/var/lib/modgate"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["modgate"]
CMD ["serve"]
