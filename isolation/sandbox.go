package isolation

// MaybeSandboxMain is a placeholder until the entry point lands.
func MaybeSandboxMain() {}
