# eventguard: the ingest and the Faust worker in one image.
#   docker build -t eventguard .
#   docker run --rm eventguard --help
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Unset for everyone who can reach PyPI. A machine that cannot (or whose TLS is
# intercepted) builds wheels first and passes PIP_NO_INDEX=1 and PIP_FIND_LINKS=/src/wheels
# (make compose-test, deploy/local-images/README.md).
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
WORKDIR /src
COPY . .
RUN pip install --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EVENTGUARD_CACHE_DIR=/var/lib/eventguard
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/eventguard \
        --shell /usr/sbin/nologin eventguard \
    && mkdir -p /app /var/lib/eventguard \
    && chown eventguard:eventguard /app /var/lib/eventguard
# `eventguard topics apply` reads ./topics (the specs are not part of the package),
# and Faust creates `<app id>-data/` in the working directory, so /app must be writable.
WORKDIR /app
COPY topics/ /app/topics/
# No config is baked in: mount one (see docker-compose.yml) and pass --config.
USER eventguard
# The ingest's port (events, /health, /ready, /metrics) and a worker's web port
# (`eventguard worker --web-port 6066`: /health, /ready, /metrics).
EXPOSE 8001 6066
ENTRYPOINT ["eventguard"]
CMD ["--help"]
