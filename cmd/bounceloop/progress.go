package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal while a large input
// is read; on anything but a terminal it draws nothing.
type progress struct {
	w     io.Writer
	label string
	total int64 // 0 when unknown
	read  atomic.Int64
	done  chan struct{}
	ended chan struct{}
}

// newProgress returns a progress for an input of total bytes (0 unknown)
// drawn on w, or nil when w is not a terminal.
func newProgress(w io.Writer, label string, total int64) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: w, label: label, total: total, done: make(chan struct{}), ended: make(chan struct{})}
	go p.loop()
	return p
}

// reader wraps r so that reads advance the bar; a nil progress returns r.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

// finish stops the bar and clears its line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.done)
	<-p.ended
}

func (p *progress) loop() {
	defer close(p.ended)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	n := p.read.Load()
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r\033[K%s %s", p.label, humanBytes(n))
		return
	}
	const width = 30
	frac := float64(n) / float64(p.total)
	if frac > 1 {
		frac = 1
	}
	fill := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		if i < fill {
			bar[i] = '='
		} else {
			bar[i] = ' '
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s] %3.0f%% %s / %s", p.label, bar, frac*100, humanBytes(n), humanBytes(p.total))
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.read.Add(int64(n))
	return n, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
