package compose

import (
	"errors"
	"fmt"
	"os"
)

// Config is the [templates] section of config.toml.
type Config struct {
	// Dir is the templates folder (layout in the package documentation).
	// Empty means the shipped templates embedded in the binary (Default).
	Dir string `toml:"dir"`
}

// Validate checks that Dir, when set, is a folder whose templates all load;
// errors name the key, "templates.dir: ...".
func (c Config) Validate() error {
	_, err := c.Open()
	return err
}

// Open loads the configured templates: Load(os.DirFS(Dir)), or Default()
// when Dir is empty. Errors name the key, "templates.dir: ...".
func (c Config) Open() (*Store, error) {
	if c.Dir == "" {
		return Default(), nil
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("templates.dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("templates.dir: %s: %w", c.Dir, errors.New("not a directory"))
	}
	s, err := Load(os.DirFS(c.Dir))
	if err != nil {
		return nil, fmt.Errorf("templates.dir: %s: %w", c.Dir, err)
	}
	return s, nil
}
