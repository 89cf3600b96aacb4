package api

import (
	"os"
	"testing"

	"github.com/openioc/ioc/internal/testenv"
)

// TestMain stops the ClickHouse the document tests start, if they started
// one.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
