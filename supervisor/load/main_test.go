package load

import (
	"testing"

	"github.com/rspp/rspp/supervisor/internal/testplugin"
)

// The test binary doubles as the sandbox entry point and as a plugin
// (testplugin.Node).
func TestMain(m *testing.M) { testplugin.Main(m) }
