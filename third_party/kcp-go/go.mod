module github.com/xtaci/kcp-go/v5

require (
	github.com/klauspost/reedsolomon v1.12.0
	github.com/pkg/errors v0.9.1
	github.com/stretchr/testify v1.6.1
	github.com/tjfoc/gmsm v1.4.1
	github.com/xtaci/lossyconn v0.0.0-20190602105132-8df528c0c9ae
	golang.org/x/crypto v0.36.0
	golang.org/x/net v0.38.0
)

require (
	github.com/davecgh/go-spew v1.1.0 // indirect
	github.com/klauspost/cpuid/v2 v2.2.6 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	golang.org/x/sys v0.31.0 // indirect
	gopkg.in/yaml.v3 v3.0.0 // indirect
)

go 1.23.0

toolchain go1.24.2
