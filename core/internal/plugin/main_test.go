package plugin

import (
	"os"
	"testing"

	"github.com/porticohq/portico/core/internal/store/storetest"
)

// TestMain runs the suite on Badger, then its tests that store data
// (plugin KV, hooks' writes, installs and packs) on every other backend
// (storetest.Backends).
func TestMain(m *testing.M) {
	os.Exit(storetest.RunOnly(m, "^Test(HookDelivery|KVBatch|KVQuotaAndGrants|EmbeddedNotesNeedsItsGrant|InstallUpgradeUninstall|ConfigTableGrantsAnInstalledPlugin|InstallPackRefused|PackRestartAndUninstall|PackGrants)$"))
}
