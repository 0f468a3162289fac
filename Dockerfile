# syntax=docker/dockerfile:1
# pgrollup and pgrollup-worker in one image (docker-compose.yml runs both).
#
#   docker build -t pgrollup .
#   docker run --rm -v $PWD/pgrollup.yaml:/etc/pgrollup/pgrollup.yaml:ro -p 7432:7432 -p 7480:7480 pgrollup
#
# Both binaries need cgo: pg_query_go compiles libpg_query, and duckdb-go
# links DuckDB's static library, which needs libstdc++ at run time.

# The Go version of go.mod exactly: the image's toolchain does not fetch another.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=1
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -o /out/pgrollup ./cmd/proxy && \
    go build -trimpath -o /out/pgrollup-worker ./cmd/worker

FROM debian:bookworm-slim
# ca-certificates: TLS to the warehouse and to S3; tzdata: session time zones
# (the rewriter compares them with build_timezone); libstdc++6: DuckDB.
RUN apt-get update && \
    apt-get install -y --no-install-recommends ca-certificates tzdata libstdc++6 && \
    rm -rf /var/lib/apt/lists/*
# An unprivileged user owning the state directory. The rollups and cache
# directories exist in the image so that a volume mounted there starts out
# owned by that user.
RUN useradd --system --home-dir /var/lib/pgrollup --shell /usr/sbin/nologin pgrollup && \
    mkdir -p /var/lib/pgrollup/rollups /var/lib/pgrollup/cache /etc/pgrollup && \
    chown -R pgrollup:pgrollup /var/lib/pgrollup
COPY --from=build /out/pgrollup /out/pgrollup-worker /usr/local/bin/
USER pgrollup
WORKDIR /var/lib/pgrollup
# 7432: Postgres clients; 7480: admin API and /metrics.
EXPOSE 7432 7480
CMD ["pgrollup", "serve", "--config", "/etc/pgrollup/pgrollup.yaml"]
