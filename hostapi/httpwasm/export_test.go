package httpwasm

// InFlight is how many requests are inside m.Serve, for tests.
func InFlight(m *Middleware) int64 { return m.inflight.Load() &^ closedBit }
