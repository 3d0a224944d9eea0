#!/bin/sh
# write the proxy credentials for the go command
cat > "$HOME/.netrc" <<NETRC
machine goproxy.corp.example:8443
login ci
password ${PROXY_TOKEN}
NETRC
export GOPROXY=https://goproxy.corp.example:8443
export GONOSUMDB=corp.example
go mod download
