package bounces

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ReadMessages calls fn for every message found at path, in order:
//
//   - "-": standard input, one message or an mbox;
//   - a file: one message, or an mbox when its first line is a "From "
//     separator;
//   - a Maildir (a folder with cur/ or new/): the files of cur/, then new/,
//     each sorted by name, dot files skipped;
//   - any other folder: its *.eml files sorted by name (not recursive).
//
// An mbox is split at "From " lines that start the input or follow an empty
// line, and at complete "From sender date" lines anywhere; ">From " lines (any number of '>') lose one '>' (mboxrd and mboxo
// quoting). name locates the message: the file's path, or "path:N" for the
// N-th (1-based) message of an mbox. The reader passed to fn is valid only
// during the call.
//
// Bad entries do not stop the reading; each is a *RecordError (see
// ParseMessages for the cases) and ReadMessages goes on with the next
// message or file. When fn returns an error ReadMessages stops and returns
// it. Otherwise, after the last message, it returns the *RecordErrors
// joined (errors.Is(err, ErrSkipped) holds, errors.As gives the first), or
// an error wrapped with the path when path itself cannot be read (it does
// not exist, or the folder cannot be listed), or nil.
func ReadMessages(path string, fn func(name string, r io.Reader) error) error {
	var skipped []error
	_, err := readMessages(path, func(m mboxMessage) error { return fn(m.name, bytes.NewReader(m.data)) },
		func(re *RecordError) error { skipped = append(skipped, re); return nil })
	if err != nil {
		return err
	}
	return errors.Join(skipped...)
}

// ParseMessages reads the messages at path as ReadMessages does, parses
// each with ParseMessage and calls fn with its reports, or with a
// *RecordError naming the message (file, and for an mbox the message number
// in File, the line of its "From " separator and its byte offset) when it
// was skipped:
//
//   - it could not be parsed (ErrNotBounce included);
//   - it is longer than MaxMessageSize: the message is skipped, not
//     truncated (a cut message could lose the recipients or the status it
//     reports on); the rest of it is read and discarded, so memory stays
//     bounded by MaxMessageSize (in an mbox also for a line of any length);
//   - a file of a folder or Maildir cannot be opened (a broken symbolic
//     link, a file a mail program renamed or deleted between the listing
//     and the opening), or a file or standard input cannot be read (a read
//     error); in the middle of an mbox the messages before the error are
//     delivered and the one being read is the record;
//   - a cur/ or new/ of a Maildir that exists but cannot be listed;
//   - a folder that is not a Maildir holds no .eml file ("no messages"):
//     the caller named a folder of messages and nothing in it could be
//     read, which is most likely the wrong folder. An empty Maildir is not
//     a record: a mailbox that received nothing (or that an earlier run
//     emptied) is the normal state of a Maildir read on a schedule.
//
// fn is called once per message or record, in order. When it returns nil
// reading goes on; a non-nil error stops it and is returned. An I/O error
// on path itself (it does not exist, the folder cannot be listed) is
// returned wrapped with the path, after nothing has been read.
func ParseMessages(path string, fn func(name string, reps []Report, err error) error) error {
	_, err := readMessages(path, func(m mboxMessage) error {
		reps, err := ParseMessage(bytes.NewReader(m.data))
		if err != nil {
			return fn(m.name, nil, &RecordError{File: m.name, Line: m.line, Offset: m.offset, Reason: recordReason(err)})
		}
		return fn(m.name, reps, nil)
	}, func(re *RecordError) error { return fn(re.File, nil, re) })
	return err
}

// recordReason is err as a record's reason: without the package prefix,
// valid UTF-8 without control characters, and at most about 200 bytes (a
// malformed header line is quoted in the error, and it can be binary).
func recordReason(err error) string {
	r := strings.TrimPrefix(err.Error(), "bounces: ")
	r = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, strings.ToValidUTF8(r, "\uFFFD"))
	if len(r) > 200 {
		r = clipBytes(r, 200) + "..."
	}
	return r
}

// maxMessageSize is MaxMessageSize; tests lower it.
var maxMessageSize = MaxMessageSize

// tooLongReason is the reason of the record for a message longer than
// maxMessageSize.
func tooLongReason() string {
	if maxMessageSize >= 1<<20 && maxMessageSize%(1<<20) == 0 {
		return fmt.Sprintf("message longer than %d MiB; skipped", maxMessageSize>>20)
	}
	return fmt.Sprintf("message longer than %d bytes; skipped", maxMessageSize)
}

// mboxMessage is one message read by readMessages.
type mboxMessage struct {
	name   string
	line   int   // line of the "From " separator in an mbox, else 0
	offset int64 // byte offset in an mbox, else -1
	data   []byte
}

// readMessages does the work of ReadMessages and returns the number of
// messages read (skipped ones included). fn gets each message, skip each
// *RecordError; an error of either stops the reading and is returned.
func readMessages(path string, fn func(mboxMessage) error, skip func(*RecordError) error) (int, error) {
	if path == "-" {
		return readStream("-", os.Stdin, fn, skip)
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bounces: %w", err)
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("bounces: %w", err)
		}
		defer f.Close()
		return readStream(path, f, fn, skip)
	}
	var files []string
	if isMaildir(path) {
		for _, sub := range []string{"cur", "new"} {
			dir := filepath.Join(path, sub)
			names, err := listDir(dir, func(string) bool { return true })
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				if err := skip(&RecordError{File: dir, Offset: -1, Reason: "cannot list the folder: " + ioReason(err)}); err != nil {
					return 0, err
				}
			}
			files = append(files, names...)
		}
	} else {
		files, err = listDir(path, func(n string) bool { return strings.EqualFold(filepath.Ext(n), ".eml") })
		if err != nil {
			return 0, fmt.Errorf("bounces: %w", err)
		}
		if len(files) == 0 {
			return 0, skip(&RecordError{File: path, Offset: -1, Reason: "no messages in " + path + " (no *.eml file, and no cur/ or new/ of a Maildir)"})
		}
	}
	total := 0
	for _, name := range files {
		n, err := readFile(name, fn, skip)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// listDir returns the regular, non-hidden files of dir that keep accepts,
// and the symbolic links among them (a broken one is reported when it is
// opened), sorted by name.
func listDir(dir string, keep func(string) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !keep(n) {
			continue
		}
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// readFile reads the message file (or mbox) of a folder; a file that
// cannot be opened is a record.
func readFile(path string, fn func(mboxMessage) error, skip func(*RecordError) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		reason := "cannot open: " + ioReason(err)
		if errors.Is(err, os.ErrNotExist) {
			if lst, lerr := os.Lstat(path); lerr == nil && lst.Mode()&os.ModeSymlink != 0 {
				reason += " (a symbolic link to a missing file)"
			} else {
				reason += " (removed or renamed since the folder was listed)"
			}
		}
		return 0, skip(&RecordError{File: path, Offset: -1, Reason: reason})
	}
	defer f.Close()
	return readStream(path, f, fn, skip)
}

// ioReason is err without the path an *os.PathError repeats.
func ioReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readStream reads one message, or an mbox when r starts with "From ". An
// error reading r is a record for the message being read.
func readStream(name string, r io.Reader, fn func(mboxMessage) error, skip func(*RecordError) error) (int, error) {
	cannotRead := func(err error) (int, error) {
		return 1, skip(&RecordError{File: name, Offset: -1, Reason: "cannot read: " + ioReason(err)})
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(5)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return cannotRead(err)
	}
	if string(head) != "From " {
		data, err := io.ReadAll(io.LimitReader(br, int64(maxMessageSize)+1))
		if err != nil {
			return cannotRead(err)
		}
		if len(data) > maxMessageSize {
			data = nil
			if _, err := io.Copy(io.Discard, br); err != nil {
				return cannotRead(err)
			}
			return 1, skip(&RecordError{File: name, Offset: -1, Reason: tooLongReason()})
		}
		return 1, fn(mboxMessage{name: name, offset: -1, data: data})
	}
	return splitMbox(name, br, fn, skip)
}

// fromLineRE matches a complete mbox separator ("From sender Thu Jul  2
// 12:05:05 2020"), accepted even without an empty line before it.
var fromLineRE = regexp.MustCompile(`^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} [0-9]{1,2}:[0-9]{2}`)

// splitMbox splits an mbox into messages. It holds at most
// maxMessageSize bytes of a message (plus the reader's 64 KiB buffer): a
// longer message is discarded as it is read and reported as a record, and
// a line longer than the buffer is handled piece by piece.
func splitMbox(name string, br *bufio.Reader, fn func(mboxMessage) error, skip func(*RecordError) error) (int, error) {
	var (
		buf       bytes.Buffer
		n         int
		lineNo    int
		offset    int64
		cur       mboxMessage
		started   bool
		tooLong   bool // the current message passed maxMessageSize
		prevEmpty = true
	)
	flush := func() error {
		if !started {
			return nil
		}
		n++
		cur.name = fmt.Sprintf("%s:%d", name, n)
		if tooLong {
			buf.Reset()
			return skip(&RecordError{File: cur.name, Line: cur.line, Offset: cur.offset, Reason: tooLongReason()})
		}
		cur.data = buf.Bytes()
		err := fn(cur)
		buf.Reset()
		return err
	}
	add := func(p []byte) {
		if !started || tooLong {
			return
		}
		if buf.Len()+len(p) > maxMessageSize {
			tooLong = true
			buf.Reset()
			return
		}
		buf.Write(p)
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lineNo++
			// A line longer than the buffer comes in pieces; the first
			// (64 KiB) decides whether it is a separator.
			sep := bytes.HasPrefix(line, []byte("From ")) && (prevEmpty || fromLineRE.Match(line))
			if sep {
				if ferr := flush(); ferr != nil {
					return n, ferr
				}
				started, tooLong = true, false
				cur = mboxMessage{line: lineNo, offset: offset}
			} else {
				l := line
				if q := bytes.TrimLeft(l, ">"); len(q) < len(l) && bytes.HasPrefix(q, []byte("From ")) {
					l = l[1:]
				}
				add(l)
			}
			empty := len(bytes.TrimRight(line, "\r\n")) == 0
			offset += int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if !sep {
					add(line)
				}
				empty = empty && len(bytes.TrimRight(line, "\r\n")) == 0
				offset += int64(len(line))
			}
			prevEmpty = empty
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			// The message being read is incomplete: it is the record;
			// the ones before it were delivered.
			re := &RecordError{File: name, Line: lineNo + 1, Offset: offset, Reason: "cannot read: " + ioReason(err)}
			if started {
				re = &RecordError{File: fmt.Sprintf("%s:%d", name, n+1), Line: cur.line, Offset: cur.offset, Reason: "cannot read the rest of the message: " + ioReason(err)}
			}
			return n + 1, skip(re)
		}
	}
	return n, flush()
}
