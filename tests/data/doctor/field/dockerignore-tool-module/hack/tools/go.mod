module example.com/app/hack/tools

go 1.23.0
