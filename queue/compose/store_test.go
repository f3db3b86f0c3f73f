package compose

import (
	"bytes"
	"errors"
	"image/png"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// okTemplate is a minimal valid template folder under name.
func okTemplate(fsys fstest.MapFS, name string) fstest.MapFS {
	fsys[name+"/subject.txt"] = file("Hi {{.first_name}}\n")
	fsys[name+"/text.txt"] = file("Hello {{.first_name}}\n")
	return fsys
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fsys      fstest.MapFS
		wantNames []string
		wantSmall []string
		wantErr   string // substring naming the file; "" = no error
	}{
		{
			name:      "minimal",
			fsys:      okTemplate(fstest.MapFS{}, "a"),
			wantNames: []string{"a"},
		},
		{
			name: "full with small, attachments, ignored files",
			fsys: okTemplate(fstest.MapFS{
				"README.md":           file("top-level files are ignored"),
				".git/config":         file("ignored"),
				"b/html.html":         file("<p>{{.first_name}}</p>"),
				"b/attachments/x.pdf": file("%PDF-1.4"),
				"b/small/text.txt":    file("small"),
				"b/small/html.html":   file("<p>small</p>"),
				"b/.DS_Store":         file("ignored"),
			}, "b"),
			wantNames: []string{"b"},
			wantSmall: []string{"b"},
		},
		{
			name:      "names sorted",
			fsys:      okTemplate(okTemplate(fstest.MapFS{}, "zeta"), "alpha"),
			wantNames: []string{"alpha", "zeta"},
		},
		{
			name:    "empty store",
			fsys:    fstest.MapFS{"README.md": file("x")},
			wantErr: "no templates found",
		},
		{
			name:    "missing subject",
			fsys:    fstest.MapFS{"a/text.txt": file("x")},
			wantErr: "a/subject.txt: missing",
		},
		{
			name:    "missing text",
			fsys:    fstest.MapFS{"a/subject.txt": file("x")},
			wantErr: "a/text.txt: missing",
		},
		{
			name:    "text parse error",
			fsys:    fstest.MapFS{"a/subject.txt": file("x"), "a/text.txt": file("{{.first_name")},
			wantErr: "a/text.txt:1:",
		},
		{
			name:    "html parse error",
			fsys:    okTemplate(fstest.MapFS{"a/html.html": file("<p>{{if .x}}</p>")}, "a"),
			wantErr: "a/html.html",
		},
		{
			name:    "subject parse error",
			fsys:    fstest.MapFS{"a/subject.txt": file("{{.x"), "a/text.txt": file("x")},
			wantErr: "a/subject.txt",
		},
		{
			name:    "unexpected file",
			fsys:    okTemplate(fstest.MapFS{"a/html.htm": file("<p>x</p>")}, "a"),
			wantErr: "a/html.htm: unexpected file",
		},
		{
			name:    "small without text",
			fsys:    okTemplate(fstest.MapFS{"a/small/html.html": file("<p>x</p>")}, "a"),
			wantErr: "a/small/text.txt: missing",
		},
		{
			name:    "small unexpected file",
			fsys:    okTemplate(fstest.MapFS{"a/small/text.txt": file("x"), "a/small/x.png": file("x")}, "a"),
			wantErr: "a/small/x.png: unexpected file",
		},
		{
			name:    "small parse error",
			fsys:    okTemplate(fstest.MapFS{"a/small/text.txt": file("{{end}}")}, "a"),
			wantErr: "a/small/text.txt",
		},
		{
			name:    "attachment folder",
			fsys:    okTemplate(fstest.MapFS{"a/attachments/sub/x.pdf": file("x")}, "a"),
			wantErr: "a/attachments/sub: not a regular file",
		},
		{
			name:    "invalid UTF-8",
			fsys:    okTemplate(fstest.MapFS{"a/html.html": file("<p>\xff</p>")}, "a"),
			wantErr: "a/html.html: not valid UTF-8",
		},
		{
			name:    "bad template name",
			fsys:    okTemplate(fstest.MapFS{}, "news letter"),
			wantErr: `template name "news letter"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Load(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want one containing %q", err, tt.wantErr)
				}
				if s != nil {
					t.Errorf("Load() = %v and an error, want nil", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v, want nil", err)
			}
			if got := s.Names(); !slices.Equal(got, tt.wantNames) {
				t.Errorf("Names() = %q, want %q", got, tt.wantNames)
			}
			for _, n := range tt.wantNames {
				if got, want := s.HasSmall(n), slices.Contains(tt.wantSmall, n); got != want {
					t.Errorf("HasSmall(%q) = %v, want %v", n, got, want)
				}
			}
		})
	}
}

func TestLoadTemplateError(t *testing.T) {
	t.Parallel()
	_, err := Load(fstest.MapFS{"a/subject.txt": file("x"), "a/text.txt": file("{{.x")})
	var te *TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("Load() error = %v, want a *TemplateError", err)
	}
	if te.Template != "a" || te.File != "a/text.txt" {
		t.Errorf("TemplateError = {%q, %q}, want {%q, %q}", te.Template, te.File, "a", "a/text.txt")
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	s := Default()
	if got, want := s.Names(), []string{"newsletter", "notice"}; !slices.Equal(got, want) {
		t.Errorf("Default().Names() = %q, want %q", got, want)
	}
	for name, want := range map[string]bool{"newsletter": true, "notice": false, "nope": false} {
		if got := s.HasSmall(name); got != want {
			t.Errorf("Default().HasSmall(%q) = %v, want %v", name, got, want)
		}
	}
	if Default() != s {
		t.Error("Default() returned a different Store on the second call")
	}
	n := s.templates["newsletter"]
	if len(n.attachments) != 1 {
		t.Fatalf("newsletter attachments = %d, want 1", len(n.attachments))
	}
	a := n.attachments[0]
	if a.contentType != "image/png" {
		t.Errorf("attachment content type = %q, want image/png", a.contentType)
	}
	if _, err := png.Decode(bytes.NewReader(a.data)); err != nil {
		t.Errorf("shipped %s is not a valid PNG: %v", a.filename, err)
	}
	if len(a.data) > 8<<10 {
		t.Errorf("shipped %s is %d bytes, want a few KB", a.filename, len(a.data))
	}
}

func TestNamesIsACopy(t *testing.T) {
	t.Parallel()
	s := Default()
	s.Names()[0] = "changed"
	if s.Names()[0] != "newsletter" {
		t.Error("Names() shares its slice with the Store")
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"pdf", "offer.pdf", "application/pdf"},
		{"png upper case", "LOGO.PNG", "image/png"},
		{"jpeg", "a.jpeg", "image/jpeg"},
		{"text", "terms.txt", "text/plain; charset=utf-8"},
		{"unknown", "data.bin-x", "application/octet-stream"},
		{"none", "README", "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := contentType(tt.file); got != tt.want {
				t.Errorf("contentType(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

// The embedded FS keeps the layout Load expects.
func TestEmbeddedLayout(t *testing.T) {
	t.Parallel()
	var files []string
	err := fs.WalkDir(embedded, "templates", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"templates/newsletter/attachments/coupon.png",
		"templates/newsletter/html.html",
		"templates/newsletter/small/html.html",
		"templates/newsletter/small/text.txt",
		"templates/newsletter/subject.txt",
		"templates/newsletter/text.txt",
		"templates/notice/subject.txt",
		"templates/notice/text.txt",
	}
	if !slices.Equal(files, want) {
		t.Errorf("embedded files = %q, want %q", files, want)
	}
}
