package wsload

import (
	"bytes"
	"os"
	"path/filepath"
)

// WriteConfig writes the light pipeline's config (what StartServer runs)
// into c.Dir and returns its path, for a server started another way
// (e.g. as a LiveKit worker).
func WriteConfig(c ServerConfig) (string, error) {
	if c.Instances == 0 {
		c.Instances = 1
	}
	var cfg bytes.Buffer
	if err := serverConfig.Execute(&cfg, c); err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, "config.yaml")
	return path, os.WriteFile(path, cfg.Bytes(), 0o644)
}
