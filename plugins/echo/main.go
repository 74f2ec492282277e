// Command echo is Portico's echo skill: it answers with its input. It is
// the smallest plugin there is, and what the runtime's tests and
// benchmarks call.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm
package main

import "github.com/porticohq/portico/sdk"

func init() {
	sdk.Skill("echo", func(in sdk.Input) ([]byte, error) { return in.Payload, nil })
}

func main() {}
