module example.com/app

go 1.23.0

require example.com/liba v1.0.0
