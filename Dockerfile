# Multi-stage build: static binaries on a small non-root runtime image.
# The base images are build arguments so that a machine without a registry
# can build this same file on local stand-ins (scripts/local-images.sh,
# docker-compose.local.yml); the defaults are the official images.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/server ./cmd/worker ./cmd/entraemu
# The emulator writes its CA into /emu, a volume shared with the other
# services; an empty named volume takes this directory's owner (nonroot).
RUN mkdir -p /emu

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /emu /emu
USER nonroot:nonroot
# The default command is the server; compose picks the process per service.
ENTRYPOINT ["/usr/local/bin/server"]
