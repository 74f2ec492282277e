// Command portico is the Portico gateway: `portico serve` runs it, the other
// subcommands validate configuration and manage its data.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr, os.Environ()).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portico:", errorText(err))
		os.Exit(1)
	}
}
