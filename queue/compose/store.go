package compose

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"mime"
	"path"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode/utf8"
)

// Errors callers branch on; Render and Load wrap them.
var (
	// ErrNoTemplate: the store has no template of that name.
	ErrNoTemplate = errors.New("no such template")
	// ErrNoSmall: Input.Small was asked for a template without a small variant.
	ErrNoSmall = errors.New("template has no small variant")
	// ErrHeaderInjection: CR or LF in a value that goes into a header.
	ErrHeaderInjection = errors.New("CR or LF in a header value")
	// ErrInvalidHeader: a header name or value that cannot be written as
	// given (bad characters, too long, a reserved header, a bad address or
	// Message-ID).
	ErrInvalidHeader = errors.New("invalid header")
)

// TemplateError reports a template that failed to load or to render: which
// template, which file (its path in the store, "newsletter/html.html"), and
// the underlying error (often text/template's own, with line and column).
type TemplateError struct {
	Template string
	File     string
	Err      error
}

func (e *TemplateError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("compose: template %q: %v", e.Template, e.Err)
	}
	return fmt.Sprintf("compose: template %q: %s: %v", e.Template, e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *TemplateError) Unwrap() error { return e.Err }

// File names inside a template folder.
const (
	subjectFile     = "subject.txt"
	textFile        = "text.txt"
	htmlFile        = "html.html"
	attachmentsDir  = "attachments"
	smallDir        = "small"
	templateOptions = "missingkey=error"
)

// Store holds parsed templates. It is immutable after Load and safe for
// concurrent use.
type Store struct {
	templates map[string]*tmpl
	names     []string
}

type tmpl struct {
	name        string
	subject     *texttemplate.Template
	full        variant
	small       *variant // nil: no small variant
	attachments []attachment
}

type variant struct {
	text *texttemplate.Template
	html *htmltemplate.Template // nil: text only
}

type attachment struct {
	filename    string
	contentType string
	data        []byte
}

//go:embed templates
var embedded embed.FS

var defaultStore = sync.OnceValue(func() *Store {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		panic(err)
	}
	s, err := Load(sub)
	if err != nil {
		panic(fmt.Sprintf("compose: shipped templates: %v", err))
	}
	return s
})

// Default returns the shipped templates, embedded in the binary:
//
//   - "newsletter": subject, text and HTML using the data fields first_name
//     and offer (required) and unsubscribe_url (optional), a PNG coupon
//     attachment, and a small variant without it;
//   - "notice": a text-only service notice using first_name; no small variant.
//
// The Store is parsed once and shared.
func Default() *Store { return defaultStore() }

// Load parses every template of fsys (see the package documentation for the
// layout). An error names the file at fault; a store without any template is
// an error too.
func Load(fsys fs.FS) (*Store, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("compose: read templates: %w", err)
	}
	s := &Store{templates: make(map[string]*tmpl)}
	for _, e := range entries {
		name := e.Name()
		if ignored(name) || !e.IsDir() {
			continue
		}
		if err := checkTemplateName(name); err != nil {
			return nil, &TemplateError{Template: name, File: name, Err: err}
		}
		t, err := loadTemplate(fsys, name)
		if err != nil {
			return nil, err
		}
		s.templates[name] = t
		s.names = append(s.names, name)
	}
	if len(s.names) == 0 {
		return nil, errors.New("compose: no templates found (want one folder per template)")
	}
	slices.Sort(s.names)
	return s, nil
}

// Names returns the template names, sorted. The slice is a copy.
func (s *Store) Names() []string { return slices.Clone(s.names) }

// HasSmall reports whether the named template has a small variant; false for
// an unknown name.
func (s *Store) HasSmall(name string) bool {
	t, ok := s.templates[name]
	return ok && t.small != nil
}

func ignored(name string) bool { return strings.HasPrefix(name, ".") }

func checkTemplateName(name string) error {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("template name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

func loadTemplate(fsys fs.FS, name string) (*tmpl, error) {
	t := &tmpl{name: name}
	fail := func(file string, err error) (*tmpl, error) {
		if te := (*TemplateError)(nil); errors.As(err, &te) {
			return nil, err
		}
		return nil, &TemplateError{Template: name, File: file, Err: err}
	}
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return fail(name, err)
	}
	var hasSmall bool
	for _, e := range entries {
		file := path.Join(name, e.Name())
		switch {
		case ignored(e.Name()):
		case e.Name() == subjectFile && !e.IsDir():
			t.subject, err = parseText(fsys, file)
		case e.Name() == textFile && !e.IsDir():
			t.full.text, err = parseText(fsys, file)
		case e.Name() == htmlFile && !e.IsDir():
			t.full.html, err = parseHTML(fsys, file)
		case e.Name() == attachmentsDir && e.IsDir():
			t.attachments, err = loadAttachments(fsys, name, file)
		case e.Name() == smallDir && e.IsDir():
			hasSmall = true
		default:
			err = errors.New("unexpected file (want subject.txt, text.txt, html.html, attachments/, small/)")
		}
		if err != nil {
			return fail(file, err)
		}
	}
	if t.subject == nil {
		return fail(path.Join(name, subjectFile), errors.New("missing (required)"))
	}
	if t.full.text == nil {
		return fail(path.Join(name, textFile), errors.New("missing (required)"))
	}
	if hasSmall {
		v, err := loadSmall(fsys, name)
		if err != nil {
			return nil, err
		}
		t.small = v
	}
	return t, nil
}

func loadSmall(fsys fs.FS, name string) (*variant, error) {
	dir := path.Join(name, smallDir)
	fail := func(file string, err error) (*variant, error) {
		return nil, &TemplateError{Template: name, File: file, Err: err}
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fail(dir, err)
	}
	v := &variant{}
	for _, e := range entries {
		file := path.Join(dir, e.Name())
		switch {
		case ignored(e.Name()):
		case e.Name() == textFile && !e.IsDir():
			v.text, err = parseText(fsys, file)
		case e.Name() == htmlFile && !e.IsDir():
			v.html, err = parseHTML(fsys, file)
		default:
			err = errors.New("unexpected file in the small variant (want text.txt, html.html)")
		}
		if err != nil {
			return fail(file, err)
		}
	}
	if v.text == nil {
		return fail(path.Join(dir, textFile), errors.New("missing (required when small/ exists)"))
	}
	return v, nil
}

func readUTF8(fsys fs.FS, file string) (string, error) {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("not valid UTF-8")
	}
	return string(b), nil
}

func parseText(fsys fs.FS, file string) (*texttemplate.Template, error) {
	src, err := readUTF8(fsys, file)
	if err != nil {
		return nil, err
	}
	return texttemplate.New(file).Option(templateOptions).Parse(src)
}

func parseHTML(fsys fs.FS, file string) (*htmltemplate.Template, error) {
	src, err := readUTF8(fsys, file)
	if err != nil {
		return nil, err
	}
	return htmltemplate.New(file).Option(templateOptions).Parse(src)
}

func loadAttachments(fsys fs.FS, name, dir string) ([]attachment, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	fail := func(file string, err error) ([]attachment, error) {
		return nil, &TemplateError{Template: name, File: file, Err: err}
	}
	var out []attachment
	for _, e := range entries {
		if ignored(e.Name()) {
			continue
		}
		file := path.Join(dir, e.Name())
		if !e.Type().IsRegular() {
			return fail(file, errors.New("not a regular file"))
		}
		if mime.FormatMediaType("attachment", map[string]string{"filename": e.Name()}) == "" {
			return fail(file, errors.New("file name cannot be written in Content-Disposition"))
		}
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return fail(file, err)
		}
		out = append(out, attachment{filename: e.Name(), contentType: contentType(e.Name()), data: data})
	}
	return out, nil
}

// knownTypes fixes the common attachment types so that the result does not
// depend on the host's mime.types.
var knownTypes = map[string]string{
	".pdf":  "application/pdf",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	".csv":  "text/csv; charset=utf-8",
	".ics":  "text/calendar; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".zip":  "application/zip",
	".json": "application/json",
}

// contentType returns the media type for a file name by its extension:
// knownTypes, then the mime package, then application/octet-stream.
func contentType(filename string) string {
	ext := strings.ToLower(path.Ext(filename))
	if t, ok := knownTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
