package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// chromium returns the path of Debian's chromium, or "".
func chromium() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func chromiumArgs(tb testing.TB, extra ...string) []string {
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + tb.TempDir(), "--virtual-time-budget=5000",
	}
	return append(args, extra...)
}

// TestHTMLChromium renders the HTML report of the shared month in headless
// Chromium and fails when a chart container has no rendered canvas or svg.
// With -update it keeps a screenshot in docs/report-screenshot.png. Without
// chromium it is skipped, except with CI=true, where it fails.
func TestHTMLChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true): apt-get install -y chromium")
		}
		t.Skip("chromium is not installed")
	}
	r := may2018(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "may2018.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{`src="http`, `href="http`, "go-echarts-assets"} {
		if bytes.Contains(b.Bytes(), []byte(ref)) {
			t.Errorf("the HTML refers to a network asset (%s)", ref)
		}
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("REPORT_HTML_OUT"); out != "" { // keep the page to look at it
		if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := chartIDs(t, b.Bytes())
	if len(want) < 3+len(r.Findings) {
		t.Errorf("chart containers = %d, want ≥ %d (2 daily, heat map, one per finding)", len(want), 3+len(r.Findings))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, chromiumArgs(t, "--dump-dom", "file://"+page)...)
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	rendered := renderedCharts(t, dom)
	for _, id := range want {
		if !rendered[id] {
			t.Errorf("chart %s has no rendered <canvas> or <svg>", id)
		}
	}

	shot := filepath.Join(dir, "report.png")
	cmd = exec.CommandContext(ctx, bin, chromiumArgs(t, "--hide-scrollbars", "--window-size=1100,1900", "--screenshot="+shot, "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %v (not a PNG)", shot, err)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "report-screenshot.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// chartIDs returns the ids of the chart containers of an HTML page.
func chartIDs(tb testing.TB, page []byte) []string {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	walk(doc, func(n *html.Node) bool {
		if id := attr(n, "id"); strings.HasPrefix(id, ChartIDPrefix) {
			ids = append(ids, id)
		}
		return true
	})
	return ids
}

// renderedCharts returns the chart containers that hold a canvas or an svg.
func renderedCharts(tb testing.TB, dom []byte) map[string]bool {
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]bool{}
	walk(doc, func(n *html.Node) bool {
		id := attr(n, "id")
		if !strings.HasPrefix(id, ChartIDPrefix) {
			return true
		}
		walk(n, func(c *html.Node) bool {
			if c.Type == html.ElementNode && (c.Data == "canvas" || c.Data == "svg") {
				out[id] = true
			}
			return true
		})
		return false
	})
	return out
}

func walk(n *html.Node, f func(*html.Node) bool) {
	if !f(n) {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	if n.Type != html.ElementNode {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestWriteHTML checks the page without a browser: stable output, the
// library inlined, a container per chart.
func TestWriteHTML(t *testing.T) {
	r := may2018(t)
	var a, b bytes.Buffer
	if err := WriteHTML(&a, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&b, may2018(t)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("WriteHTML is not deterministic")
	}
	page := a.String()
	if !strings.Contains(page, "echarts.init(") || !strings.Contains(page, echartsJS[:200]) {
		t.Error("the page lacks the inlined echarts library or the chart scripts")
	}
	if strings.Contains(page, "<script src=") {
		t.Error("the page loads a script from elsewhere")
	}
	ids := chartIDs(t, a.Bytes())
	want := 3 + min(len(r.Findings), htmlMaxFindingPlot)
	if len(ids) != want {
		t.Errorf("chart containers = %d (%v), want %d", len(ids), ids, want)
	}
}
