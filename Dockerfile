# partition-deps: the gRPC service in a slim, non-root image with a gRPC HEALTHCHECK.
#
#   docker build -t partition-deps .
#   docker run -p 50051:50051 -e DATABASE_URL=postgresql://... partition-deps
#
# Without DATABASE_URL the service runs an embedded Postgres in /var/lib/partition-deps/pg (mount
# a volume there to keep it). Lint: scripts/check_deploy.sh (hadolint). The HEALTHCHECK command is
# run as written against a live server with mutual TLS on by tests/deploy/test_healthcheck.py.

ARG GO_IMAGE=golang:1.26-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- grpc-health-probe, built from its Go module (static, no cgo) ---------------------------
FROM ${GO_IMAGE} AS probe
ARG GRPC_HEALTH_PROBE_VERSION=v0.4.62
ENV CGO_ENABLED=0 GOBIN=/out
RUN go install "github.com/grpc-ecosystem/grpc-health-probe@${GRPC_HEALTH_PROBE_VERSION}"

# --- the service as a wheel, with wheels of every dependency --------------------------------
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 partition-deps \
 && useradd --system --uid 10001 --gid partition-deps --no-log-init \
      --home-dir /var/lib/partition-deps --create-home partition-deps
COPY --from=probe /out/grpc-health-probe /usr/local/bin/grpc-health-probe
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/partition_deps-*.whl

USER 10001:10001
WORKDIR /var/lib/partition-deps
# The HEALTHCHECK probes the health-only plaintext listener on loopback (PD_HEALTH_PORT), which
# answers whatever the main port's TLS settings (--tls-cert, mutual TLS): a probe needs no client
# certificate. Change PD_HEALTH_LISTEN and PD_HEALTH_PORT together.
ENV PD_PORT=50051 \
    PD_HEALTH_PORT=50052 \
    PD_DATA_DIR=/var/lib/partition-deps/pg \
    PYTHONUNBUFFERED=1
ENV PD_LISTEN=0.0.0.0:${PD_PORT} \
    PD_HEALTH_LISTEN=127.0.0.1:${PD_HEALTH_PORT}
EXPOSE 50051

# Exit 0 only while the service reports SERVING: it turns NOT_SERVING when its database is down.
# A shell expands PD_HEALTH_PORT (exec form, so hadolint's DL3025 holds).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/bin/sh", "-c", "exec grpc-health-probe -addr=127.0.0.1:${PD_HEALTH_PORT} -connect-timeout=2s -rpc-timeout=2s"]

ENTRYPOINT ["partition-deps"]
CMD ["serve"]
