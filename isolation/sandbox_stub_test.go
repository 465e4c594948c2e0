package isolation_test

func sandboxHelper(mode string) int { return 2 }
