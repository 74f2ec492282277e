package plugin

import (
	"os"
	"testing"

	"github.com/porticohq/portico/core/internal/store/storetest"
)

// TestMain runs the suite once per storage backend (storetest.Backends).
func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
