// Package sdk is the guest side of Portico's plugin ABI: what a plugin
// author imports to write skills, channels, hooks and middleware in Go
// (built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared). It depends on
// the standard library only.
//
// The host refuses a module built for an ABI it does not speak: the major
// version must match and the guest's minor must not be newer than the
// host's.
package sdk

import (
	"strconv"

	"github.com/porticohq/portico/sdk/internal/printf"
)

// ABI version this SDK speaks. Additions raise the minor and are additive.
// A module reports the oldest version its exports need: v1.0, or v1.1
// when it registers a Channel. Host functions speak for themselves: a
// module that calls MCPCall imports mcp_call_tool (v1.2), and a host
// older than v1.2 refuses it at load, naming that import.
const (
	ABIMajor = 1
	ABIMinor = 2
)

// ABIVersion returns the ABI version as "vMAJOR.MINOR".
func ABIVersion() string { return "v" + strconv.Itoa(ABIMajor) + "." + strconv.Itoa(ABIMinor) }

// Errorf is fmt.Errorf for plugins: the same verbs and %w wrapping for
// the values plugins format (strings, byte slices, numbers, booleans,
// errors and Stringers; another type prints as %!v(unsupported type)),
// without linking fmt, which costs a module ~0.4 MB and the gateway ~1.2
// MB of compiled code for each plugin that imports it. Logf, BadInput and
// Refuse format the same way.
func Errorf(format string, args ...any) error { return printf.Errorf(format, args...) }

// Compatible reports whether a host speaking hostMajor.hostMinor can run
// every kind of guest built with this SDK.
func Compatible(hostMajor, hostMinor int) bool {
	return hostMajor == ABIMajor && hostMinor >= ABIMinor
}
