//go:build race

package core_test

// raceEnabled: the race detector slows the compiler tenfold, so tests
// that would compile Go guests from scratch use the shared cache instead.
const raceEnabled = true
