module corp.example.com/team/app

go 1.23.0

require corp.example.com/lib v1.0.0
