module github.com/porticohq/portico/sdk

go 1.26
