CGO_ENABLED="${CGO_ENABLED:-0}"

build() {
  env CGO_ENABLED=${CGO_ENABLED} go build ./...
}
