package webhook_test

import (
	"testing"

	"github.com/tenantsync/tenantsync/internal/leaktest"
)

// TestMain fails the package if goroutines outlive its tests.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
