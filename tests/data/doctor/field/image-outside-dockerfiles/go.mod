module example.com/app

go 1.24.0

toolchain go1.24.2
