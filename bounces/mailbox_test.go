package bounces

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
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
	}, func(re *RecordError) error {
		t.Errorf("splitMbox() skipped %v", re)
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

// collect is a ParseMessages callback that keeps the recipients (as
// "name recipient") and the skipped records, in order.
type collect struct {
	t       *testing.T
	dir     string
	rcpts   []string
	skipped []*RecordError
	order   []string // "ok NAME" or "skip NAME"
}

func (c *collect) fn(name string, reps []Report, err error) error {
	c.t.Helper()
	rel := strings.TrimPrefix(filepath.ToSlash(name), filepath.ToSlash(c.dir)+"/")
	if err != nil {
		var re *RecordError
		if !errors.As(err, &re) || !errors.Is(err, ErrSkipped) {
			c.t.Fatalf("ParseMessages: %s: error %v is not a *RecordError", rel, err)
		}
		if reps != nil {
			c.t.Errorf("ParseMessages: %s: reports and error %v", rel, err)
		}
		c.skipped = append(c.skipped, re)
		c.order = append(c.order, "skip "+rel)
		return nil
	}
	c.order = append(c.order, "ok "+rel)
	for _, r := range reps {
		c.rcpts = append(c.rcpts, r.Recipient)
	}
	return nil
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestParseMessagesUnreadableEntry checks that a file of a folder or a
// Maildir that cannot be opened (a broken symbolic link; tests run as root,
// so modes do not stop reads) is a record naming it and that the messages
// after it are still read.
func TestParseMessagesUnreadableEntry(t *testing.T) {
	dsn, qmail, arf := readFixture(t, "dsn-postfix-two.eml"), readFixture(t, "qmail-two.eml"), readFixture(t, "arf-abuse.eml")
	dir := t.TempDir()
	// The folder of the audit: good, garbage, empty, broken link, good, good.
	writeFile(t, filepath.Join(dir, "nasty", "a.eml"), dsn)
	writeFile(t, filepath.Join(dir, "nasty", "b.eml"), "\x00\xff\xfe garbage "+strings.Repeat("\x01\x80", 400)+"\n\x80\x81: \n")
	writeFile(t, filepath.Join(dir, "nasty", "c.eml"), "")
	symlink(t, filepath.Join(dir, "nowhere.eml"), filepath.Join(dir, "nasty", "d.eml"))
	writeFile(t, filepath.Join(dir, "nasty", "f.eml"), qmail)
	writeFile(t, filepath.Join(dir, "nasty", "g.eml"), arf)
	// A Maildir with a broken link in cur/ and in new/.
	writeFile(t, filepath.Join(dir, "maildir", "cur", "1:2,S"), dsn)
	symlink(t, filepath.Join(dir, "gone-cur"), filepath.Join(dir, "maildir", "cur", "2:2,S"))
	writeFile(t, filepath.Join(dir, "maildir", "cur", "3:2,"), qmail)
	symlink(t, filepath.Join(dir, "gone-new"), filepath.Join(dir, "maildir", "new", "4"))
	writeFile(t, filepath.Join(dir, "maildir", "new", "5"), arf)
	// A Maildir whose new/ cannot be listed (a link to a file).
	writeFile(t, filepath.Join(dir, "badnew", "cur", "1"), dsn)
	writeFile(t, filepath.Join(dir, "afile"), "x")
	symlink(t, filepath.Join(dir, "afile"), filepath.Join(dir, "badnew", "new"))

	all := []string{"jan@azet.sk", "eva@gmail.com", "petr@example.cz", "jana@example.cz", "jana@centrum.sk"}
	tests := []struct {
		name      string
		path      string
		wantOrder []string
		wantRcpts []string
		wantWhy   []string // a substring of each record's reason
	}{
		{name: "folder", path: "nasty",
			wantOrder: []string{"ok nasty/a.eml", "skip nasty/b.eml", "skip nasty/c.eml", "skip nasty/d.eml", "ok nasty/f.eml", "ok nasty/g.eml"},
			wantRcpts: all, wantWhy: []string{"header", "not a bounce", "cannot open: no such file or directory (a symbolic link to a missing file)"}},
		{name: "maildir", path: "maildir",
			wantOrder: []string{"ok maildir/cur/1:2,S", "skip maildir/cur/2:2,S", "ok maildir/cur/3:2,", "skip maildir/new/4", "ok maildir/new/5"},
			wantRcpts: all, wantWhy: []string{"symbolic link to a missing file", "symbolic link to a missing file"}},
		{name: "maildir with an unreadable new", path: "badnew",
			wantOrder: []string{"skip badnew/new", "ok badnew/cur/1"},
			wantRcpts: []string{"jan@azet.sk", "eva@gmail.com"}, wantWhy: []string{"cannot list the folder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collect{t: t, dir: dir}
			if err := ParseMessages(filepath.Join(dir, tt.path), c.fn); err != nil {
				t.Fatalf("ParseMessages(%q) error = %v, want nil", tt.path, err)
			}
			if !reflect.DeepEqual(c.order, tt.wantOrder) {
				t.Errorf("ParseMessages(%q) order = %q, want %q", tt.path, c.order, tt.wantOrder)
			}
			if !reflect.DeepEqual(c.rcpts, tt.wantRcpts) {
				t.Errorf("ParseMessages(%q) recipients = %q, want %q", tt.path, c.rcpts, tt.wantRcpts)
			}
			if len(c.skipped) != len(tt.wantWhy) {
				t.Fatalf("ParseMessages(%q) skipped %d, want %d", tt.path, len(c.skipped), len(tt.wantWhy))
			}
			for i, re := range c.skipped {
				if !strings.Contains(re.Reason, tt.wantWhy[i]) || re.Line != 0 || re.Offset != -1 {
					t.Errorf("ParseMessages(%q) record %d = %+v, want a reason with %q, no line or offset", tt.path, i, re, tt.wantWhy[i])
				}
				if !utf8.ValidString(re.Reason) || strings.ContainsFunc(re.Reason, unicode.IsControl) || len(re.Reason) > 210 {
					t.Errorf("ParseMessages(%q) record %d reason %q: want short printable UTF-8", tt.path, i, re.Reason)
				}
			}
		})
	}

	t.Run("ReadMessages goes on and joins the records", func(t *testing.T) {
		var got []string
		err := ReadMessages(filepath.Join(dir, "maildir"), func(name string, r io.Reader) error {
			got = append(got, filepath.Base(name))
			return nil
		})
		if want := []string{"1:2,S", "3:2,", "5"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ReadMessages(maildir) names = %q, want %q", got, want)
		}
		var re *RecordError
		if !errors.Is(err, ErrSkipped) || !errors.As(err, &re) || filepath.Base(re.File) != "2:2,S" || strings.Count(err.Error(), "\n") != 1 {
			t.Errorf("ReadMessages(maildir) error = %v, want the two records, the first of 2:2,S", err)
		}
	})
}

// TestParseMessagesNoMessages checks the folders without messages: a plain
// folder without *.eml files is a record, an empty Maildir is not.
func TestParseMessagesNoMessages(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"empty", "maildir/cur", "maildir/new", "maildir/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "other", "notes.txt"), "From: a@example.com\n\nx\n")
	writeFile(t, filepath.Join(dir, "other", ".hidden.eml"), "From: a@example.com\n\nx\n")
	tests := []struct {
		name     string
		path     string
		wantSkip bool
	}{
		{"empty folder", "empty", true},
		{"folder without eml files", "other", true},
		{"empty maildir", "maildir", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collect{t: t, dir: dir}
			path := filepath.Join(dir, tt.path)
			if err := ParseMessages(path, c.fn); err != nil {
				t.Fatalf("ParseMessages(%q) error = %v, want nil", tt.path, err)
			}
			if !tt.wantSkip {
				if len(c.order) != 0 {
					t.Errorf("ParseMessages(%q) = %q, want nothing", tt.path, c.order)
				}
				return
			}
			if len(c.skipped) != 1 || len(c.order) != 1 {
				t.Fatalf("ParseMessages(%q) = %q, want one record", tt.path, c.order)
			}
			if re := c.skipped[0]; re.File != path || !strings.Contains(re.Reason, "no messages in "+path) {
				t.Errorf("ParseMessages(%q) record = %+v, want %q: no messages in it", tt.path, re, path)
			}
		})
	}
}

// lowLimit sets maxMessageSize to n for the test.
func lowLimit(t *testing.T, n int) {
	saved := maxMessageSize
	maxMessageSize = n
	t.Cleanup(func() { maxMessageSize = saved })
}

// TestReadMessagesTooLong checks that a message over the limit is skipped
// with a record, alone or in an mbox, and that the messages around it are
// read whole.
func TestReadMessagesTooLong(t *testing.T) {
	lowLimit(t, 4<<10)
	dir := t.TempDir()
	dsn := readFixture(t, "dsn-postfix-two.eml")
	big := "From: MAILER-DAEMON@example.com\nSubject: big\n\n" + strings.Repeat("0123456789abcdef\n", 300) // 5.1 KB
	longLine := "From: MAILER-DAEMON@example.com\nSubject: long line\n\n" + strings.Repeat("x", 200<<10) + "\n"
	sep := func(n int) string { return fmt.Sprintf("From MAILER-DAEMON Thu May 17 08:0%d:00 2018\n", n) }
	mbox := sep(1) + dsn + "\n" + sep(2) + big + "\n" + sep(3) + longLine + "\n" + sep(4) + dsn
	writeFile(t, filepath.Join(dir, "box.mbox"), mbox)
	writeFile(t, filepath.Join(dir, "folder", "a.eml"), big)
	writeFile(t, filepath.Join(dir, "folder", "b.eml"), dsn)
	if len(dsn) > maxMessageSize {
		t.Fatalf("fixture of %d bytes over the test limit", len(dsn))
	}

	c := &collect{t: t, dir: dir}
	if err := ParseMessages(filepath.Join(dir, "box.mbox"), c.fn); err != nil {
		t.Fatalf("ParseMessages(box.mbox) error = %v", err)
	}
	if want := []string{"ok box.mbox:1", "skip box.mbox:2", "skip box.mbox:3", "ok box.mbox:4"}; !reflect.DeepEqual(c.order, want) {
		t.Errorf("ParseMessages(box.mbox) = %q, want %q", c.order, want)
	}
	if want := []string{"jan@azet.sk", "eva@gmail.com", "jan@azet.sk", "eva@gmail.com"}; !reflect.DeepEqual(c.rcpts, want) {
		t.Errorf("ParseMessages(box.mbox) recipients = %q, want %q", c.rcpts, want)
	}
	for i, re := range c.skipped {
		wantOff := int64(strings.Index(mbox, sep(i+2)))
		wantLine := strings.Count(mbox[:wantOff], "\n") + 1
		if re.Reason != "message longer than 4096 bytes; skipped" || re.Offset != wantOff || re.Line != wantLine {
			t.Errorf("record %d = %+v, want line %d, offset %d, \"message longer than 4096 bytes; skipped\"", i, re, wantLine, wantOff)
		}
	}

	c = &collect{t: t, dir: dir}
	if err := ParseMessages(filepath.Join(dir, "folder"), c.fn); err != nil {
		t.Fatalf("ParseMessages(folder) error = %v", err)
	}
	if want := []string{"skip folder/a.eml", "ok folder/b.eml"}; !reflect.DeepEqual(c.order, want) {
		t.Errorf("ParseMessages(folder) = %q, want %q", c.order, want)
	}
	if len(c.skipped) == 1 && !strings.Contains(c.skipped[0].Reason, "longer than") {
		t.Errorf("ParseMessages(folder) record = %+v, want longer than the limit", c.skipped[0])
	}

	// The limit itself is accepted.
	exact := "Subject: x\n\n" + strings.Repeat("y", maxMessageSize-len("Subject: x\n\n"))
	var got []int
	n, err := readStream("exact", strings.NewReader(exact), func(m mboxMessage) error { got = append(got, len(m.data)); return nil },
		func(re *RecordError) error { t.Errorf("readStream(exact) skipped %v", re); return nil })
	if err != nil || n != 1 || !reflect.DeepEqual(got, []int{maxMessageSize}) {
		t.Errorf("readStream(%d bytes) = %d, %v, sizes %v, want the whole message", len(exact), n, err, got)
	}
	if MaxMessageSize != 16<<20 {
		t.Errorf("MaxMessageSize = %d, want 16 MiB", MaxMessageSize)
	}
}

// TestTooLongReason pins the record's wording at the real limit.
func TestTooLongReason(t *testing.T) {
	if got, want := tooLongReason(), "message longer than 16 MiB; skipped"; got != want {
		t.Errorf("tooLongReason() = %q, want %q", got, want)
	}
}

// repeatReader gives n copies of b, then tail, without holding them.
type repeatReader struct {
	b    byte
	n    int64
	tail *strings.Reader
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return r.tail.Read(p)
	}
	k := int64(len(p))
	if k > r.n {
		k = r.n
	}
	for i := range p[:k] {
		p[i] = r.b
	}
	r.n -= k
	return int(k), nil
}

// TestSplitMboxLongLineMemory checks that a very long line in an mbox is
// discarded as it is read: 32 MiB of one line must not allocate more than
// a few MiB (it used to be held whole: a 60 MB line took 205 MB).
func TestSplitMboxLongLineMemory(t *testing.T) {
	lowLimit(t, 64<<10)
	const lineLen = 32 << 20
	head := "From a@example.com Thu May 17 08:01:00 2018\nSubject: long\n\n"
	r := io.MultiReader(strings.NewReader(head), &repeatReader{b: 'x', n: lineLen,
		tail: strings.NewReader("\n\nFrom b@example.com Thu May 17 08:02:00 2018\nSubject: short\n\nbody\n")})
	var names []string
	var skipped []*RecordError
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := readStream("long", r, func(m mboxMessage) error {
		names = append(names, m.name)
		return nil
	}, func(re *RecordError) error { skipped = append(skipped, re); return nil })
	runtime.ReadMemStats(&after)
	if err != nil || n != 2 {
		t.Fatalf("readStream() = %d, %v, want 2 messages", n, err)
	}
	if !reflect.DeepEqual(names, []string{"long:2"}) || len(skipped) != 1 || skipped[0].File != "long:1" || skipped[0].Line != 1 {
		t.Errorf("readStream() messages %q, records %+v, want long:2 read and long:1 skipped", names, skipped)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("readStream() of a %d MiB line allocated %d KiB, want < 4 MiB", lineLen>>20, alloc>>10)
	}
}

// errAfter gives r, then err.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

// TestReadStreamIOError checks that a read error is a record for the
// message being read, after the messages before it.
func TestReadStreamIOError(t *testing.T) {
	boom := errors.New("input/output error")
	tests := []struct {
		name      string
		in        string
		wantNames []string
		wantFile  string
	}{
		{"single message", "Subject: x\n\nbody", nil, "f"},
		{"in the second message of an mbox", "From a Thu May 17 08:01:00 2018\nSubject: 1\n\nx\n\nFrom b Thu May 17 08:02:00 2018\nSubject: 2\n", []string{"f:1"}, "f:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			var skipped []*RecordError
			_, err := readStream("f", &errAfter{strings.NewReader(tt.in), boom}, func(m mboxMessage) error {
				names = append(names, m.name)
				return nil
			}, func(re *RecordError) error { skipped = append(skipped, re); return nil })
			if err != nil {
				t.Fatalf("readStream() error = %v, want nil", err)
			}
			if !reflect.DeepEqual(names, tt.wantNames) || len(skipped) != 1 || skipped[0].File != tt.wantFile || !strings.Contains(skipped[0].Reason, "input/output error") {
				t.Errorf("readStream() = %q, records %+v, want %q and a record at %s", names, skipped, tt.wantNames, tt.wantFile)
			}
		})
	}
}

// TestParseMessagesMboxFixtures reads the mboxes of testdata/mbox.
func TestParseMessagesMboxFixtures(t *testing.T) {
	for _, name := range []string{"dsn-arf-other.mbox", "dsn-arf-other-crlf.mbox"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "mbox")
			c := &collect{t: t, dir: dir}
			if err := ParseMessages(filepath.Join(dir, name), c.fn); err != nil {
				t.Fatalf("ParseMessages(%q) error = %v", name, err)
			}
			if want := []string{"ok " + name + ":1", "ok " + name + ":2", "skip " + name + ":3"}; !reflect.DeepEqual(c.order, want) {
				t.Errorf("ParseMessages(%q) = %q, want %q", name, c.order, want)
			}
			if want := []string{"jan@azet.sk", "eva@gmail.com", "jana@centrum.sk"}; !reflect.DeepEqual(c.rcpts, want) {
				t.Errorf("ParseMessages(%q) recipients = %q, want %q", name, c.rcpts, want)
			}
		})
	}
}
