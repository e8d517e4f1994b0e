# The agent's container image: one static binary, floe, on an empty base.
#
#   docker build -t floe:dev .
#   docker run --rm -p 9092:9092 -p 9644:9644 floe:dev playground --listen 0.0.0.0:9092 --admin-listen 0.0.0.0:9644
#
# deploy/helm/floe runs it as `floe agent`, configured through FLOE_*
# variables (README: Configuration).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/floe ./cmd/floe \
 && mkdir -p /out/tmp && chmod 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
COPY --from=build /out/floe /floe
USER 65532:65532
EXPOSE 9092 9644
ENTRYPOINT ["/floe"]
CMD ["playground", "--listen", "0.0.0.0:9092", "--admin-listen", "0.0.0.0:9644"]
