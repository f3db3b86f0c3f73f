package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/event"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/go-echarts/go-echarts/v2/render"
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

// TestSnippetMatchesRenderSnippet: snippet, which parses go-echarts'
// templates once, writes what render.(Renderer).RenderSnippet writes, for
// every kind of chart of the report and for a chart with a JavaScript
// function in its options (go-echarts' __f__ markers).
func TestSnippetMatchesRenderSnippet(t *testing.T) {
	r := may2018(t)
	type chart interface {
		echartsChart
		RenderSnippet() render.ChartSnippet
	}
	type built struct {
		c  chart
		bc *charts.BaseConfiguration
	}
	build := map[string]func() built{
		"heat map": func() built { hm, _ := heatMap(r); return built{hm, &hm.BaseConfiguration} },
		"function": func() built {
			l := charts.NewLine()
			l.SetGlobalOptions(initOpts("fn", "100px"), charts.WithTooltipOpts(opts.Tooltip{
				Show: opts.Bool(true), Formatter: opts.FuncOpts("function (p) { return p.name + '</b>'; }"),
			}), charts.WithEventListeners(event.Listener{EventName: "click", Handler: opts.FuncOpts("function (p) { console.log(p); }")}))
			l.AddJSFuncStrs("console.log('%MY_ECHARTS%');")
			l.SetXAxis([]string{"a", "b"}).AddSeries("s", lineData([]int64{1, 2}, false))
			return built{l, &l.BaseConfiguration}
		},
	}
	for i, f := range r.Findings {
		build[fmt.Sprintf("finding %d %s", i+1, f.Kind)] = func() built { b := findingChart(i, f, r.Series); return built{b, &b.BaseConfiguration} }
	}
	for _, line := range []string{"attempts", "failures"} {
		build["daily "+line] = func() built {
			// the daily charts as buildCharts makes them
			var l *charts.Line
			for _, d := range r.Domains[:3] {
				if l == nil {
					l = charts.NewLine()
					l.SetGlobalOptions(initOpts("daily_"+line, "380px"), charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true)}))
					l.SetXAxis(r.Series.Days)
				}
				l.AddSeries(d.Domain, lineData(r.Series.Domain[d.Domain].Attempts, line == "attempts"))
			}
			return built{l, &l.BaseConfiguration}
		}
	}
	for name, b := range build {
		t.Run(name, func(t *testing.T) {
			x := b()
			el, sc, err := snippet(x.c, x.bc)
			if err != nil {
				t.Fatal(err)
			}
			want := b().c.RenderSnippet()
			if string(el) != want.Element || string(sc) != want.Script {
				t.Errorf("snippet() differs from RenderSnippet():\n%s\n%s\nwant\n%s\n%s", el, sc, want.Element, want.Script)
			}
			if name == "function" && (strings.Contains(string(sc), "__f__") || !strings.Contains(string(sc), "function (p)") ||
				!strings.Contains(string(sc), ".on(") || !strings.Contains(string(sc), "console.log('goecharts_")) {
				t.Errorf("function chart script %s: want the function without markers", sc)
			}
		})
	}
}

// heatMapOption returns the JSON option of the heat map of an HTML page.
func heatMapOption(tb testing.TB, page string) json.RawMessage {
	tb.Helper()
	const marker = "let option_" + ChartIDPrefix + "heatmap = "
	i := strings.Index(page, marker)
	if i < 0 {
		tb.Fatal("no heat map option in the page")
	}
	var raw json.RawMessage
	if err := json.NewDecoder(strings.NewReader(page[i+len(marker):])).Decode(&raw); err != nil {
		tb.Fatalf("heat map option: %v", err)
	}
	return raw
}

// echartsLabelsJS renders an option with the embedded ECharts in Node
// (server-side SVG) and prints the x axis labels drawn with their rotation,
// as a JSON object.
const echartsLabelsJS = `
const echarts = require(process.argv[2]);
const opt = require(process.argv[3]);
opt.animation = false;
const c = echarts.init(null, null, {renderer: 'svg', ssr: true, width: 960, height: 600});
c.setOption(opt);
const svg = c.renderToSVGString();
const esc = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
// each x label drawn, with its rotation in degrees (from its transform)
const out = {};
for (const text of svg.match(/<text[^>]*>[^<]*<\/text>/g) || []) {
  for (const d of opt.xAxis[0].data) {
    if (text.endsWith('>' + esc(d) + '</text>')) {
      const m = text.match(/transform="matrix\(([-0-9.e]+),([-0-9.e]+),/);
      out[d] = m ? Math.round(Math.atan2(-Number(m[2]), Number(m[1])) * 180 / Math.PI) : 0;
    }
  }
}
console.log(JSON.stringify(out));
c.dispose();
process.exit(0); // zrender's animation loop would keep node running
`

// TestHeatMapLabelsRendered draws the heat map with the embedded ECharts
// in Node (skipped without node) and checks that every domain's label is
// drawn (ECharts' default interval hides about every other one), turned.
func TestHeatMapLabelsRendered(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	r := may2018(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"echarts.js": []byte(echartsJS), "option.json": heatMapOption(t, b.String()), "labels.js": []byte(echartsLabelsJS),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "labels.js"), filepath.Join(dir, "echarts.js"), filepath.Join(dir, "option.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var drawn map[string]float64 // label -> rotation in degrees
	if err := json.Unmarshal(out, &drawn); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	want := min(len(r.Domains), htmlHeatDomains)
	if len(drawn) != want {
		t.Errorf("heat map: %d of %d domain labels drawn (%v)", len(drawn), want, drawn)
	}
	for label, deg := range drawn {
		if deg < 30 || deg > 45 {
			t.Errorf("heat map label %s turned %v°, want 30–45°", label, deg)
		}
	}
}

// TestHeatMapLabels: the heat map shows every domain's label (interval 0;
// ECharts' default hides labels that would overlap) and turns them.
func TestHeatMapLabels(t *testing.T) {
	r := may2018(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	var opt struct {
		XAxis []struct {
			Data      []string `json:"data"`
			AxisLabel *struct {
				Interval any     `json:"interval"`
				Rotate   float64 `json:"rotate"`
			} `json:"axisLabel"`
		} `json:"xAxis"`
	}
	if err := json.Unmarshal(heatMapOption(t, b.String()), &opt); err != nil {
		t.Fatalf("heat map option: %v", err)
	}
	if len(opt.XAxis) != 1 {
		t.Fatalf("heat map x axes = %d, want 1", len(opt.XAxis))
	}
	x := opt.XAxis[0]
	if want := min(len(r.Domains), htmlHeatDomains); len(x.Data) != want {
		t.Errorf("heat map domains = %d, want %d", len(x.Data), want)
	}
	if x.AxisLabel == nil || fmt.Sprint(x.AxisLabel.Interval) != "0" || x.AxisLabel.Rotate < 30 || x.AxisLabel.Rotate > 45 {
		t.Errorf("heat map x axisLabel = %+v, want interval 0 (every label) and a rotation of 30–45°", x.AxisLabel)
	}
}
