package bounces

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestZZDump(t *testing.T) {
	for _, f := range filepath.SplitList(os.Getenv("ZZFILES")) {
		fh, err := os.Open(filepath.Join("testdata/corpus/eml", f))
		if err != nil { t.Fatal(err) }
		reps, err := ParseMessage(fh)
		fh.Close()
		fmt.Printf("=== %s err=%v\n", f, err)
		for _, r := range reps {
			fmt.Printf("  rcpt=%q action=%v code=%d enh=%q\n  text=%q\n", r.Recipient, r.Action, r.Reply.Code, r.Reply.Enhanced, r.Reply.Text)
		}
	}
}
