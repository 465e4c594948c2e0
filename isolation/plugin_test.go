package isolation_test

import "os"

func servePingPlugin() { os.Exit(2) }
