package main

import (
	"bufio"
	"errors"
	"io"
)

// errLongLine is returned by readLine for a line over its limit; the line
// has been consumed and reading can go on.
var errLongLine = errors.New("line too long")

// readLine returns the next line of r without its "\n". A line longer than
// max is consumed and reported as errLongLine; io.EOF comes only when no
// bytes are left.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > max+1 {
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if long {
				return "", errLongLine
			}
			if len(buf) == 0 {
				return "", io.EOF
			}
			return string(buf), nil
		case err != nil:
			return "", err
		}
		if long {
			return "", errLongLine
		}
		return string(buf[:len(buf)-1]), nil
	}
}
