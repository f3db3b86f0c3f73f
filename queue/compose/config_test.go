package compose

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConfig(t *testing.T) {
	t.Parallel()
	good := writeFiles(t, map[string]string{
		"welcome/subject.txt": "Welcome, {{.first_name}}",
		"welcome/text.txt":    "Hello {{.first_name}}",
	})
	broken := writeFiles(t, map[string]string{
		"welcome/subject.txt": "Welcome",
		"welcome/text.txt":    "Hello {{.first_name",
	})
	empty := t.TempDir()
	tests := []struct {
		name      string
		cfg       Config
		wantNames []string
		wantErr   []string // substrings; nil = no error
	}{
		{"empty dir means the shipped templates", Config{}, []string{"newsletter", "notice"}, nil},
		{"folder", Config{Dir: good}, []string{"welcome"}, nil},
		{"missing folder", Config{Dir: filepath.Join(good, "nope")}, nil, []string{"templates.dir:", "nope"}},
		{"a file", Config{Dir: filepath.Join(good, "welcome", "text.txt")}, nil, []string{"templates.dir:", "not a directory"}},
		{"broken template", Config{Dir: broken}, nil, []string{"templates.dir:", "welcome/text.txt"}},
		{"no templates", Config{Dir: empty}, nil, []string{"templates.dir:", "no templates found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			s, openErr := tt.cfg.Open()
			if tt.wantErr != nil {
				for _, e := range []error{err, openErr} {
					if e == nil {
						t.Fatalf("Validate()/Open() error = nil, want one containing %q", tt.wantErr)
					}
					for _, want := range tt.wantErr {
						if !strings.Contains(e.Error(), want) {
							t.Errorf("error = %q, want it to contain %q", e, want)
						}
					}
				}
				if s != nil {
					t.Error("Open() returned a Store and an error")
				}
				return
			}
			if err != nil || openErr != nil {
				t.Fatalf("Validate() = %v, Open() error = %v, want nil", err, openErr)
			}
			if got := s.Names(); !slices.Equal(got, tt.wantNames) {
				t.Errorf("Open().Names() = %q, want %q", got, tt.wantNames)
			}
		})
	}
}

func TestConfigTOML(t *testing.T) {
	t.Parallel()
	var doc struct {
		Templates Config `toml:"templates"`
	}
	md, err := toml.Decode("[templates]\ndir = \"/srv/bounceloop/templates\"\n", &doc)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("undecoded keys %v", u)
	}
	if got, want := doc.Templates.Dir, "/srv/bounceloop/templates"; got != want {
		t.Errorf("templates.dir = %q, want %q", got, want)
	}
}
