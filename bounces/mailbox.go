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
// N-th (1-based) message of an mbox. Each message is at most MaxMessageSize
// bytes; the rest of a longer one is dropped. The reader passed to fn is
// valid only during the call.
//
// When fn returns an error ReadMessages stops and returns it; an I/O error
// reading path (or a file in the folder) is returned wrapped with the path.
func ReadMessages(path string, fn func(name string, r io.Reader) error) error {
	_, err := readMessages(path, func(m mboxMessage) error { return fn(m.name, bytes.NewReader(m.data)) })
	return err
}

// ParseMessages reads the messages at path as ReadMessages does, parses
// each with ParseMessage and calls fn with its reports, or with a
// *RecordError naming the message (file, and for an mbox the message number
// in File, the line of its "From " separator and its byte offset) when it
// could not be parsed (ErrNotBounce included). When fn returns nil reading
// goes on; a non-nil error stops it and is returned. A whole-file I/O error
// is returned too.
func ParseMessages(path string, fn func(name string, reps []Report, err error) error) error {
	_, err := readMessages(path, func(m mboxMessage) error {
		reps, err := ParseMessage(bytes.NewReader(m.data))
		if err != nil {
			return fn(m.name, nil, &RecordError{File: m.name, Line: m.line, Offset: m.offset, Reason: strings.TrimPrefix(err.Error(), "bounces: ")})
		}
		return fn(m.name, reps, nil)
	})
	return err
}

// mboxMessage is one message read by readMessages.
type mboxMessage struct {
	name   string
	line   int   // line of the "From " separator in an mbox, else 0
	offset int64 // byte offset in an mbox, else -1
	data   []byte
}

// readMessages does the work of ReadMessages and returns the number of
// messages read.
func readMessages(path string, fn func(mboxMessage) error) (int, error) {
	if path == "-" {
		return readStream("-", os.Stdin, fn)
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bounces: %w", err)
	}
	if !st.IsDir() {
		return readFile(path, fn)
	}
	var files []string
	if isMaildir(path) {
		for _, sub := range []string{"cur", "new"} {
			names, err := listDir(filepath.Join(path, sub), func(string) bool { return true })
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("bounces: %w", err)
			}
			files = append(files, names...)
		}
	} else {
		files, err = listDir(path, func(n string) bool { return strings.EqualFold(filepath.Ext(n), ".eml") })
		if err != nil {
			return 0, fmt.Errorf("bounces: %w", err)
		}
	}
	total := 0
	for _, f := range files {
		n, err := readFile(f, fn)
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
// sorted by name.
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

func readFile(path string, fn func(mboxMessage) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("bounces: %w", err)
	}
	defer f.Close()
	return readStream(path, f, fn)
}

// readStream reads one message, or an mbox when r starts with "From ".
func readStream(name string, r io.Reader, fn func(mboxMessage) error) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(5)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return 0, fmt.Errorf("bounces: %s: %w", name, err)
	}
	if string(head) != "From " {
		data, err := io.ReadAll(io.LimitReader(br, MaxMessageSize))
		if err != nil {
			return 0, fmt.Errorf("bounces: %s: %w", name, err)
		}
		if _, err := io.Copy(io.Discard, br); err != nil {
			return 0, fmt.Errorf("bounces: %s: %w", name, err)
		}
		return 1, fn(mboxMessage{name: name, offset: -1, data: data})
	}
	return splitMbox(name, br, fn)
}

// fromLineRE matches a complete mbox separator ("From sender Thu Jul  2
// 12:05:05 2020"), accepted even without an empty line before it.
var fromLineRE = regexp.MustCompile(`^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} [0-9]{1,2}:[0-9]{2}`)

// splitMbox splits an mbox into messages.
func splitMbox(name string, br *bufio.Reader, fn func(mboxMessage) error) (int, error) {
	var (
		buf       bytes.Buffer
		n         int
		lineNo    int
		offset    int64
		cur       mboxMessage
		started   bool
		prevEmpty = true
	)
	flush := func() error {
		if !started {
			return nil
		}
		n++
		cur.name = fmt.Sprintf("%s:%d", name, n)
		cur.data = buf.Bytes()
		err := fn(cur)
		buf.Reset()
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: read the rest of it.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			lineNo++
			if bytes.HasPrefix(line, []byte("From ")) && (prevEmpty || fromLineRE.Match(line)) {
				if ferr := flush(); ferr != nil {
					return n, ferr
				}
				started = true
				cur = mboxMessage{line: lineNo, offset: offset}
			} else if started && buf.Len() <= MaxMessageSize {
				l := line
				if q := bytes.TrimLeft(l, ">"); len(q) < len(l) && bytes.HasPrefix(q, []byte("From ")) {
					l = l[1:]
				}
				buf.Write(l)
			}
			trimmed := bytes.TrimRight(line, "\r\n")
			prevEmpty = len(trimmed) == 0
			offset += int64(len(line))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return n, fmt.Errorf("bounces: %s: %w", name, err)
		}
	}
	return n, flush()
}
