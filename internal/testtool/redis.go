package testtool

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// RedisEnv names a Redis server tests may use, as a redis:// URL
// (.ci/run starts one). Tests sharing it keep apart by key prefix.
const RedisEnv = "PORTICO_TEST_REDIS_URL"

// Redis returns the URL of RedisEnv; without it the test skips (fails
// under RequireEnv).
func Redis(t testing.TB) string {
	t.Helper()
	u := os.Getenv(RedisEnv)
	if u == "" {
		missing(t, RedisEnv+" is not set (a Redis server; .ci/run starts one)")
	}
	return u
}

// RedisKeyPrefix is a key prefix of its own, so tests sharing the Redis
// of RedisEnv keep apart.
func RedisKeyPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "portico-test:" + hex.EncodeToString(b[:]) + ":"
}
