package bounces

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const mboxSample = "From MAILER-DAEMON Thu May 17 08:03:11 2018\n" +
	"From: MAILER-DAEMON@mx.example.cz\nSubject: failure notice\n\n" +
	"Hi. This is the qmail-send program at mx.example.cz.\n\n<petr@example.cz>:\nSorry, no mailbox here by that name. (#5.1.1)\n" +
	">From the archive\n>>From twice quoted\n\n" +
	"From someone@example.com Thu May 17 08:04:00 2018\n" +
	"From: someone@example.com\nSubject: hello\n\nnot a bounce\n\n" +
	"From MAILER-DAEMON Thu May 17 08:05:00 2018\n" +
	"From: MAILER-DAEMON@mx.example.cz\nSubject: failure notice\n\n" +
	"Hi. This is the qmail-send program at mx.example.cz.\n\n<jana@example.cz>:\nSorry, no mailbox here by that name. (#5.1.1)\n"

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadMessages(t *testing.T) {
	dir := t.TempDir()
	one := "From: a@example.com\nSubject: x\n\nbody\n"
	writeFile(t, filepath.Join(dir, "single.eml"), one)
	writeFile(t, filepath.Join(dir, "box.mbox"), mboxSample)
	writeFile(t, filepath.Join(dir, "folder", "b.eml"), one)
	writeFile(t, filepath.Join(dir, "folder", "a.eml"), one)
	writeFile(t, filepath.Join(dir, "folder", "notes.txt"), "ignored")
	writeFile(t, filepath.Join(dir, "folder", ".hidden.eml"), one)
	writeFile(t, filepath.Join(dir, "maildir", "new", "2"), one)
	writeFile(t, filepath.Join(dir, "maildir", "cur", "1:2,S"), one)
	if err := os.MkdirAll(filepath.Join(dir, "maildir", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		path      string
		wantNames []string
	}{
		{name: "single file", path: "single.eml", wantNames: []string{"single.eml"}},
		{name: "mbox", path: "box.mbox", wantNames: []string{"box.mbox:1", "box.mbox:2", "box.mbox:3"}},
		{name: "folder of eml", path: "folder", wantNames: []string{"folder/a.eml", "folder/b.eml"}},
		{name: "maildir", path: "maildir", wantNames: []string{"maildir/cur/1:2,S", "maildir/new/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := ReadMessages(filepath.Join(dir, tt.path), func(name string, r io.Reader) error {
				if _, err := io.ReadAll(r); err != nil {
					return err
				}
				got = append(got, strings.TrimPrefix(filepath.ToSlash(name), filepath.ToSlash(dir)+"/"))
				return nil
			})
			if err != nil {
				t.Fatalf("ReadMessages(%q) error = %v", tt.path, err)
			}
			if !reflect.DeepEqual(got, tt.wantNames) {
				t.Errorf("ReadMessages(%q) names = %q, want %q", tt.path, got, tt.wantNames)
			}
		})
	}

	t.Run("missing path", func(t *testing.T) {
		err := ReadMessages(filepath.Join(dir, "nope"), func(string, io.Reader) error { return nil })
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadMessages(missing) error = %v, want %v", err, os.ErrNotExist)
		}
	})
	t.Run("fn error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := ReadMessages(filepath.Join(dir, "box.mbox"), func(string, io.Reader) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("ReadMessages() = %v after %d calls, want %v after 1", err, calls, stop)
		}
	})
}

func TestSplitMboxUnquote(t *testing.T) {
	var msgs []string
	_, err := splitMbox("box", bufio.NewReader(strings.NewReader(mboxSample)), func(m mboxMessage) error {
		msgs = append(msgs, string(m.data))
		return nil
	})
	if err != nil {
		t.Fatalf("splitMbox() error = %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("splitMbox() gave %d messages, want 3", len(msgs))
	}
	if !strings.Contains(msgs[0], "\nFrom the archive\n>From twice quoted\n") {
		t.Errorf("splitMbox() message 1 = %q, want unquoted From lines", msgs[0])
	}
	if strings.HasPrefix(msgs[1], "From ") {
		t.Errorf("splitMbox() message 2 = %q, want the separator removed", msgs[1])
	}
}

func TestParseMessages(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "box.mbox")
	writeFile(t, path, mboxSample)
	var rcpts []string
	var skipped []*RecordError
	err := ParseMessages(path, func(name string, reps []Report, err error) error {
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) || !errors.Is(err, ErrSkipped) {
				t.Errorf("ParseMessages(%q) error %v is not a *RecordError", name, err)
			}
			skipped = append(skipped, re)
			if reps != nil {
				t.Errorf("ParseMessages(%q) gave reports and error %v", name, err)
			}
			return nil
		}
		for _, r := range reps {
			rcpts = append(rcpts, r.Recipient)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ParseMessages() error = %v", err)
	}
	if want := []string{"petr@example.cz", "jana@example.cz"}; !reflect.DeepEqual(rcpts, want) {
		t.Errorf("ParseMessages() recipients = %q, want %q", rcpts, want)
	}
	if len(skipped) != 1 {
		t.Fatalf("ParseMessages() skipped %d messages, want 1", len(skipped))
	}
	re := skipped[0]
	if re.File != path+":2" || re.Line != 12 || re.Offset <= 0 || !strings.Contains(re.Reason, "not a bounce") {
		t.Errorf("ParseMessages() record error = %+v, want file %q line 12 and an offset", re, path+":2")
	}
	if got, want := re.Offset, int64(strings.Index(mboxSample, "From someone")); got != want {
		t.Errorf("ParseMessages() record error offset = %d, want %d", got, want)
	}
}
