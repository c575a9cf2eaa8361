# Multi-stage build: static binaries on a small non-root runtime image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/server ./cmd/worker ./cmd/entraemu
# The emulator writes its CA into /emu, a volume shared with the other
# services; an empty named volume takes this directory's owner (nonroot).
RUN mkdir -p /emu

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /emu /emu
USER nonroot:nonroot
# The default command is the server; compose picks the process per service.
ENTRYPOINT ["/usr/local/bin/server"]
