package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nastyFolder writes the folder of the audit (good, garbage, empty, broken
// link, good, good) and a Maildir with a broken link in cur/ and in new/,
// and returns their paths. Tests run as root: a mode does not stop a read,
// a broken symbolic link does.
func nastyFolder(t *testing.T) (folder, maildir string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "bounces", "testdata", "messages", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dsn, qmail, arf := read("dsn-postfix-two.eml"), read("qmail-two.eml"), read("arf-abuse.eml")
	dir := t.TempDir()
	folder, maildir = filepath.Join(dir, "nasty"), filepath.Join(dir, "maildir")
	for _, d := range []string{folder, filepath.Join(maildir, "cur"), filepath.Join(maildir, "new"), filepath.Join(maildir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name string) {
		if err := os.Symlink(filepath.Join(dir, "missing"), name); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(folder, "a.eml"), dsn)
	writeFile(t, filepath.Join(folder, "b.eml"), "\x00\xff garbage \x01\n\x80: \n")
	writeFile(t, filepath.Join(folder, "c.eml"), "")
	link(filepath.Join(folder, "d.eml"))
	writeFile(t, filepath.Join(folder, "f.eml"), qmail)
	writeFile(t, filepath.Join(folder, "g.eml"), arf)
	writeFile(t, filepath.Join(maildir, "cur", "1:2,S"), dsn)
	link(filepath.Join(maildir, "cur", "2:2,S"))
	writeFile(t, filepath.Join(maildir, "cur", "3:2,"), qmail)
	link(filepath.Join(maildir, "new", "4"))
	writeFile(t, filepath.Join(maildir, "new", "5"), arf)
	return folder, maildir
}

// TestDSNGoesOnAfterUnreadableEntries checks that a file that cannot be
// opened is a skipped record and that every good message after it is
// printed (it used to stop the folder).
func TestDSNGoesOnAfterUnreadableEntries(t *testing.T) {
	folder, maildir := nastyFolder(t)
	tests := []struct {
		name        string
		path        string
		wantFiles   []string // of the records, in order
		wantSkipped []string // named on stderr
	}{
		{"folder", folder, []string{"a.eml", "a.eml", "f.eml", "f.eml", "g.eml"}, []string{"b.eml", "c.eml", "d.eml"}},
		{"maildir", maildir, []string{"1:2,S", "1:2,S", "3:2,", "3:2,", "5"}, []string{"2:2,S", "new/4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runCmd(t, "", "dsn", "--json", tt.path)
			if code != exitSkipped {
				t.Errorf("dsn %s = %d, want %d", tt.name, code, exitSkipped)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var rec dsnRecord
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("dsn %s: bad line %q: %v", tt.name, line, err)
				}
				got = append(got, filepath.Base(rec.File))
			}
			if strings.Join(got, " ") != strings.Join(tt.wantFiles, " ") {
				t.Errorf("dsn %s printed records of %q, want %q", tt.name, got, tt.wantFiles)
			}
			for _, s := range tt.wantSkipped {
				if !strings.Contains(errs, s) {
					t.Errorf("dsn %s: stderr does not name %s:\n%s", tt.name, s, errs)
				}
			}
			if !strings.Contains(errs, "symbolic link to a missing file") {
				t.Errorf("dsn %s: stderr does not say why the link was skipped:\n%s", tt.name, errs)
			}
		})
	}
	// --strict still stops at the first record.
	out, _, code := runCmd(t, "", "dsn", "--strict", folder)
	if code != exitSkipped || strings.Count(out, "\n") != 2 {
		t.Errorf("dsn --strict = %d with %q, want %d after a.eml's two lines", code, out, exitSkipped)
	}
}

// TestDSNNoMessages checks the folders without messages: a folder without
// .eml files is a skipped record (exit 1), an empty Maildir is noted and
// exits 0.
func TestDSNNoMessages(t *testing.T) {
	dir := t.TempDir()
	empty, maildir := filepath.Join(dir, "empty"), filepath.Join(dir, "maildir")
	for _, d := range []string{empty, filepath.Join(maildir, "cur"), filepath.Join(maildir, "new")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := runCmd(t, "", "dsn", empty)
	if code != exitSkipped || out != "" || !strings.Contains(errs, "no messages in "+empty) {
		t.Errorf("dsn on an empty folder = %d, %q, stderr %q; want %d and \"no messages in %s\"", code, out, errs, exitSkipped, empty)
	}
	out, errs, code = runCmd(t, "", "dsn", maildir)
	if code != exitOK || out != "" || !strings.Contains(errs, "an empty Maildir") {
		t.Errorf("dsn on an empty Maildir = %d, %q, stderr %q; want %d and a note", code, out, errs, exitOK)
	}
}

// TestDSNTooLong checks that a message over 16 MiB is skipped with a record
// and the next file is read.
func TestDSNTooLong(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "a.eml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("From: MAILER-DAEMON@example.com\nSubject: big\n\n"); err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 1<<20-1) + "\n"
	for i := 0; i < 17; i++ {
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dsn, err := os.ReadFile("../../bounces/testdata/messages/dsn-postfix-two.eml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "b.eml"), string(dsn))
	out, errs, code := runCmd(t, "", "dsn", dir)
	if code != exitSkipped || strings.Count(out, "\n") != 2 || !strings.Contains(out, "b.eml") {
		t.Errorf("dsn = %d, %q, want %d and b.eml's two lines", code, out, exitSkipped)
	}
	if !strings.Contains(errs, "a.eml") || !strings.Contains(errs, "message longer than 16 MiB; skipped") {
		t.Errorf("dsn stderr %q, want a.eml: message longer than 16 MiB; skipped", errs)
	}
}

// TestIngestGoesOnAfterUnreadableEntries is the ingest side of
// TestDSNGoesOnAfterUnreadableEntries (the same reading code).
func TestIngestGoesOnAfterUnreadableEntries(t *testing.T) {
	folder, maildir := nastyFolder(t)
	tests := []struct {
		name        string
		path        string
		wantSkipped []string
	}{
		{"folder", folder, []string{"b.eml", "c.eml", "d.eml"}},
		{"maildir", maildir, []string{"cur/2:2,S", "new/4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, sup, _ := ingestSetup(t)
			out, errs, code := runCmd(t, "", "ingest", "--config", cfg, "--json", tt.path)
			if code != exitSkipped {
				t.Errorf("ingest %s = %d, want %d; stderr %s", tt.name, code, exitSkipped, errs)
			}
			var got ingestResult
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("ingest --json: %v: %q", err, out)
			}
			if got.Events != 5 || got.Suppressed != 3 {
				t.Errorf("ingest %s = %+v, want the 5 events of the 3 good messages, 3 suppressed", tt.name, got)
			}
			if len(got.Skipped) != len(tt.wantSkipped) {
				t.Fatalf("ingest %s skipped %+v, want %v", tt.name, got.Skipped, tt.wantSkipped)
			}
			for i, s := range got.Skipped {
				if !strings.HasSuffix(s.Location, tt.wantSkipped[i]) || s.Reason == "" {
					t.Errorf("ingest %s skipped[%d] = %+v, want at %s with a reason", tt.name, i, s, tt.wantSkipped[i])
				}
			}
			for _, a := range []string{"jan@azet.sk", "petr@example.cz", "jana@centrum.sk"} {
				if _, ok, err := sup.Get(t.Context(), a); err != nil || !ok {
					t.Errorf("after ingest %s: %s suppressed = %v (%v), want true", tt.name, a, ok, err)
				}
			}
		})
	}
}
