package sdk_test

import (
	"fmt"
	"testing"

	"github.com/porticohq/portico/sdk"
)

func TestCompatible(t *testing.T) {
	tests := []struct {
		name         string
		major, minor int
		want         bool
	}{
		{"same version", sdk.ABIMajor, sdk.ABIMinor, true},
		{"newer host minor", sdk.ABIMajor, sdk.ABIMinor + 1, true},
		{"older host minor", sdk.ABIMajor, sdk.ABIMinor - 1, false},
		{"other major", sdk.ABIMajor + 1, sdk.ABIMinor, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sdk.Compatible(tt.major, tt.minor); got != tt.want {
				t.Errorf("Compatible(%d, %d) = %v, want %v", tt.major, tt.minor, got, tt.want)
			}
		})
	}
}

func ExampleABIVersion() {
	fmt.Println(sdk.ABIVersion())
	// Output: v1.0
}
