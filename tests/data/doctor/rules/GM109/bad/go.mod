module example.com/app

go 1.23.0

require (
	git.corp.internal/platform/log v1.4.0
	golang.org/x/text v0.14.0
)
