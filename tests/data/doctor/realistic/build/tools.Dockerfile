FROM golang:latest AS tools
RUN go get github.com/golangci/golangci-lint/cmd/golangci-lint@v1.61.0
RUN --platform=linux/amd64 go install golang.org/x/vuln/cmd/govulncheck@v1.1.3

# modgate-ignore GM022
FROM golang AS generate
RUN go install golang.org/x/tools/cmd/stringer@v0.24.0
RUN adduser -D gen
USER gen
RUN go generate ./...
