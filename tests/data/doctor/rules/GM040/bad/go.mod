module example.com/app

go 1.22.x

toolchain 1.23
