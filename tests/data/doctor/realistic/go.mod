module git.corp.example.com/payments/service

go 1.24.0

toolchain go1.24.2

require (
	corp.example.com/shared/money v1.8.0
	git.corp.example.com/platform/log v1.4.2
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.14.0
)
