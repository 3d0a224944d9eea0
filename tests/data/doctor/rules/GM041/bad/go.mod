module example.com/app

go 1.23.0

require golang.org/x/text v0.14.0
