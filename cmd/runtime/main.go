// Command rspp is the RSPP runtime: one supervisor process that runs the
// turn kernel and the transports and talks to every provider and node as a
// separate plugin process. This main only parses flags and calls into the
// supervisor's rooms (app for run and serve, load for chaos, admin for
// status and upgrade) and replay. It links no provider (test/layout).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/supervisor/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2 // bad config or flags: nothing was started
)

func main() {
	// When this binary was started as the sandbox entry point of a plugin,
	// this does not return: it confines itself and execs the plugin.
	isolation.MaybeSandboxMain()

	root := &cobra.Command{
		Use:           "rspp",
		Short:         "RSPP voice-agent runtime: a kernel supervising provider plugins as processes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), serveCmd(), upgradeCmd(), statusCmd(), chaosCmd())
	root.AddCommand(replayCmd())
	root.AddCommand(tokenCmd())
	err := root.Execute()
	os.Exit(exitCode(err))
}

// usageError marks bad flags or arguments.
type usageError struct{ error }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "rspp:", err)
	var ue usageError
	var ce *externalnode.ConfigError // a node refused its config block
	if errors.Is(err, config.ErrInvalid) || errors.As(err, &ue) || errors.As(err, &ce) {
		return exitConfig
	}
	return exitFail
}
