package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/event"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/go-echarts/go-echarts/v2/render"
	"github.com/go-echarts/go-echarts/v2/templates"
)

// echartsJS is Apache ECharts 5 (assets/echarts.min.js, Apache-2.0, see
// assets/LICENSE), inlined into every HTML report so that it opens without
// a network.
//
//go:embed assets/echarts.min.js
var echartsJS string

// The HTML charts' limits.
const (
	htmlTopDomains     = 6  // domains in the daily attempts and failures charts
	htmlHeatDomains    = 15 // domains in the heat map
	htmlMaxFindingPlot = 40 // findings with a chart
	heatLabelRotate    = 40 // degrees: the heat map's domain labels
)

// ChartIDPrefix starts the id of every chart container of the HTML report
// (the Chromium check looks for them).
const ChartIDPrefix = "chart_"

// WriteHTML writes r as one self-contained HTML page: the report's tables
// and charts (daily attempts and failures of the top domains, a code ×
// domain heat map, and the daily series behind each finding), with the
// charting library embedded.
func WriteHTML(w io.Writer, r *Report) error {
	cs, err := buildCharts(r)
	if err != nil {
		return err
	}
	page := htmlPage{R: r, JS: inlineJS(), Charts: cs}
	for _, c := range r.Codes {
		if !delivered(c.Code) {
			page.Failures = append(page.Failures, htmlCode{c, pct(ratio(c.Count, r.Totals.Failed))})
		}
	}
	return htmlTpl.Execute(w, page)
}

type htmlPage struct {
	R        *Report
	JS       template.JS
	Charts   []htmlChart
	Failures []htmlCode
}

type htmlCode struct {
	CodeStat
	ShareOfFailures string
}

type htmlChart struct {
	Section string // "overview" or "finding"
	Title   string
	Text    string
	Action  string
	Element template.HTML
	Script  template.HTML
}

// inlineJS is echartsJS made safe inside a <script> element, computed once:
// it does not depend on the report.
var inlineJS = sync.OnceValue(func() template.JS {
	return template.JS(strings.ReplaceAll(echartsJS, "</", `<\/`))
})

// snippetTemplates are go-echarts' templates of a chart's container and
// script, parsed once. They are the templates of
// render.(Renderer).RenderSnippet, which parses three templates (the option
// one unused here) on every call: most of the time of a page with a few
// dozen charts.
var snippetTemplates = sync.OnceValue(func() [2]*template.Template {
	return [2]*template.Template{
		render.MustTemplate(render.ModChart, []string{templates.BaseTpl, templates.BaseElementTpl}),
		render.MustTemplate(render.ModChart, []string{templates.BaseTpl, templates.BaseScriptTpl}),
	}
})

// funcStrMarker is go-echarts' marker around JavaScript functions in a
// chart's options, removed from the output (render's pattern).
var funcStrMarker = regexp.MustCompile(`(__f__")|("__f__)|(__f__)`)

// echartsChart is a go-echarts chart: Validate prepares it for rendering
// (what RenderSnippet runs first).
type echartsChart interface {
	Validate()
}

// snippetData holds what go-echarts' element and script templates read of
// a chart. Executing them on it rather than on the chart saves the
// reflection walks over the chart's deeply embedded option structs.
type snippetData struct {
	opts.Initialization // .ChartID, .Theme, .Initialization.Width, ...
	JSFunctions         opts.JSFunctions
	EventListeners      []event.Listener
	JSONNotEscaped      template.HTML
}

// snippet renders a chart's container and script (bc is c's base
// configuration): the Element and Script of render.(Renderer).RenderSnippet,
// byte for byte, with the templates parsed once.
func snippet(c echartsChart, bc *charts.BaseConfiguration) (template.HTML, template.HTML, error) {
	c.Validate()
	data := &snippetData{
		Initialization: bc.Initialization, JSFunctions: bc.JSFunctions,
		EventListeners: bc.EventListeners, JSONNotEscaped: bc.JSONNotEscaped(),
	}
	var out [2]template.HTML
	for i, tpl := range snippetTemplates() {
		var b bytes.Buffer
		if err := tpl.ExecuteTemplate(&b, render.ModChart, data); err != nil {
			return "", "", fmt.Errorf("report: render chart: %w", err)
		}
		s := b.Bytes()
		if bytes.Contains(s, []byte("__f__")) {
			s = funcStrMarker.ReplaceAll(s, nil)
		}
		out[i] = template.HTML(s)
	}
	return out[0], out[1], nil
}

func initOpts(id, height string) charts.GlobalOpts {
	return charts.WithInitializationOpts(opts.Initialization{
		ChartID: ChartIDPrefix + id, Width: "960px", Height: height, Theme: "white", Renderer: "canvas",
	})
}

func buildCharts(r *Report) ([]htmlChart, error) {
	s := r.Series
	if s == nil {
		return nil, nil
	}
	var out []htmlChart
	top := r.Domains
	if len(top) > htmlTopDomains {
		top = top[:htmlTopDomains]
	}

	// daily attempts and failures of the top domains
	for _, what := range []string{"attempts", "failures"} {
		line := charts.NewLine()
		line.SetGlobalOptions(
			initOpts("daily_"+what, "380px"),
			charts.WithAnimation(false),
			charts.WithTitleOpts(opts.Title{Title: "Daily " + what + ", top domains"}),
			charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
			charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "28px"}),
			charts.WithYAxisOpts(opts.YAxis{Type: logIf(what == "attempts"), Name: what}),
			charts.WithGridOpts(opts.Grid{Top: "70px"}),
		)
		line.SetXAxis(s.Days)
		for _, d := range top {
			ds := s.Domain[d.Domain]
			v := ds.Attempts
			if what == "failures" {
				v = ds.Failed
			}
			line.AddSeries(d.Domain, lineData(v, what == "attempts"))
		}
		el, sc, err := snippet(line, &line.BaseConfiguration)
		if err != nil {
			return nil, err
		}
		out = append(out, htmlChart{Section: "overview", Title: "Daily " + what + " of the top domains", Element: el, Script: sc})
	}

	// code × domain heat map
	if hm, ok := heatMap(r); ok {
		el, sc, err := snippet(hm, &hm.BaseConfiguration)
		if err != nil {
			return nil, err
		}
		out = append(out, htmlChart{Section: "overview", Title: "Failure codes × domains (month count)", Element: el, Script: sc})
	}

	// the series behind each finding
	for i, f := range r.Findings {
		if i == htmlMaxFindingPlot {
			break
		}
		bar := findingChart(i, f, s)
		el, sc, err := snippet(bar, &bar.BaseConfiguration)
		if err != nil {
			return nil, err
		}
		out = append(out, htmlChart{Section: "finding", Title: fmt.Sprintf("%d. %s", i+1, findingTitle(f)), Text: f.Summary, Action: f.Action, Element: el, Script: sc})
	}
	return out, nil
}

func logIf(b bool) string {
	if b {
		return "log"
	}
	return "value"
}

// lineData converts counts; on a log axis zeros are left out (a gap).
func lineData(v []int64, log bool) []opts.LineData {
	out := make([]opts.LineData, len(v))
	for i, n := range v {
		if log && n <= 0 {
			out[i] = opts.LineData{Value: "-"}
			continue
		}
		out[i] = opts.LineData{Value: n}
	}
	return out
}

func barData(v []int64) []opts.BarData {
	out := make([]opts.BarData, len(v))
	for i, n := range v {
		out[i] = opts.BarData{Value: n}
	}
	return out
}

func heatMap(r *Report) (*charts.HeatMap, bool) {
	doms := r.Domains
	if len(doms) > htmlHeatDomains {
		doms = doms[:htmlHeatDomains]
	}
	var codes []CodeStat
	for _, c := range r.Codes {
		if !delivered(c.Code) {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 || len(doms) == 0 {
		return nil, false
	}
	sort.SliceStable(codes, func(i, j int) bool { return codes[i].Code < codes[j].Code })
	xs := make([]string, len(doms))
	col := map[string]int{}
	for i, d := range doms {
		xs[i] = d.Domain
		col[d.Domain] = i
	}
	ys := make([]string, len(codes))
	var data []opts.HeatMapData
	var top int64
	for j, c := range codes {
		ys[j] = fmt.Sprintf("%d %s", c.Code, c.Class)
		for _, d := range c.Domains {
			if i, ok := col[d.Domain]; ok {
				data = append(data, opts.HeatMapData{Value: [3]any{i, j, d.Count}})
				top = max(top, d.Count)
			}
		}
	}
	hm := charts.NewHeatMap()
	hm.SetGlobalOptions(
		initOpts("heatmap", fmt.Sprintf("%dpx", 210+36*len(codes))),
		charts.WithAnimation(false),
		charts.WithTitleOpts(opts.Title{Title: "Failure codes × domains"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		// every domain's label (interval 0), turned so that they do not overlap
		charts.WithXAxisOpts(opts.XAxis{
			Type: "category", Data: xs, SplitArea: &opts.SplitArea{Show: opts.Bool(true)},
			AxisLabel: &opts.AxisLabel{Interval: "0", Rotate: heatLabelRotate},
		}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: ys, SplitArea: &opts.SplitArea{Show: opts.Bool(true)}}),
		charts.WithGridOpts(opts.Grid{Left: "170px", Bottom: "130px"}),
		charts.WithVisualMapOpts(opts.VisualMap{
			Calculable: opts.Bool(true), Min: 0, Max: float32(top), Orient: "horizontal", Left: "center", Bottom: "0",
			InRange: &opts.VisualMapInRange{Color: []string{"#f7fbff", "#fdd49e", "#ef6548", "#990000"}},
		}),
	)
	hm.SetXAxis(xs)
	hm.AddSeries("count", data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true)}))
	return hm, true
}

// findingChart plots the daily series behind f: the domain's (or all
// domains') attempts as bars and the code's daily count, or rate for
// volume_correlated, as a line on the right axis.
func findingChart(i int, f Finding, s *Series) *charts.Bar {
	att := s.Attempts
	code := s.Code[f.Code]
	where := "all domains"
	if f.Domain != "" {
		if ds := s.Domain[f.Domain]; ds != nil {
			att, code, where = ds.Attempts, ds.Code[f.Code], f.Domain
		}
	}
	if code == nil {
		code = make([]int64, len(s.Days))
	}
	bar := charts.NewBar()
	bar.SetGlobalOptions(
		initOpts(fmt.Sprintf("finding_%d", i+1), "300px"),
		charts.WithAnimation(false),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "0"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "attempts"}),
		charts.WithGridOpts(opts.Grid{Top: "50px"}),
	)
	bar.SetXAxis(s.Days)
	bar.AddSeries("attempts ("+where+")", barData(att), charts.WithItemStyleOpts(opts.ItemStyle{Color: "#c6dbef"}))
	line := charts.NewLine()
	if f.Kind == KindVolumeCorrelated {
		bar.ExtendYAxis(opts.YAxis{Name: fmt.Sprintf("%d rate %%", f.Code), Position: "right"})
		rates := make([]opts.LineData, len(att))
		for d := range att {
			if att[d] >= corrMinAttempts {
				rates[d] = opts.LineData{Value: round(100 * ratio(code[d], att[d]))}
			} else {
				rates[d] = opts.LineData{Value: "-"}
			}
		}
		line.AddSeries(fmt.Sprintf("%d rate %% (days ≥ %d attempts)", f.Code, corrMinAttempts), rates,
			charts.WithLineChartOpts(opts.LineChart{YAxisIndex: 1}), charts.WithItemStyleOpts(opts.ItemStyle{Color: "#cb181d"}))
	} else {
		bar.ExtendYAxis(opts.YAxis{Name: fmt.Sprintf("%d count", f.Code), Position: "right"})
		line.AddSeries(fmt.Sprintf("%d count", f.Code), lineData(code, false),
			charts.WithLineChartOpts(opts.LineChart{YAxisIndex: 1}), charts.WithItemStyleOpts(opts.ItemStyle{Color: "#cb181d"}))
	}
	bar.Overlap(line)
	return bar
}

var htmlTpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":       num,
	"pct":       pct,
	"delivered": delivered,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bounce report {{.R.Month}} ({{.R.Timezone}})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; padding: 0.5em 1em; border-left: 4px solid #f0b400; }
.finding { margin: 1.5em 0; }
.action { font-weight: 600; }
.container { margin: 1em 0; }
</style>
<script>{{.JS}}</script>
</head>
<body>
<h1>Bounce report {{.R.Month}} ({{.R.Timezone}})</h1>
<p>Generated {{.R.Generated.Format "2006-01-02 15:04 MST"}}.{{if .R.Partial}} The month is still running.{{end}}
An attempt is any answer: 2xx answers are delivered, every other code is a failed attempt, including 605 (already suppressed).</p>
{{if .R.BucketNote}}<p class="note">{{.R.BucketNote}}</p>{{end}}
<h2>Summary</h2>
<table>
<tr><th></th><th>{{.R.Month}}</th>{{with .R.Totals.Previous}}<th>{{.Month}} (previous)</th>{{end}}</tr>
<tr><td>attempts</td><td class="n">{{num .R.Totals.Attempts}}</td>{{with .R.Totals.Previous}}<td class="n">{{num .Attempts}}</td>{{end}}</tr>
<tr><td>delivered</td><td class="n">{{num .R.Totals.Delivered}}</td>{{with .R.Totals.Previous}}<td class="n">{{num .Delivered}}</td>{{end}}</tr>
<tr><td>failed</td><td class="n">{{num .R.Totals.Failed}}</td>{{with .R.Totals.Previous}}<td class="n">{{num .Failed}}</td>{{end}}</tr>
<tr><td>failure rate</td><td class="n">{{pct .R.Totals.FailureRate}}</td>{{with .R.Totals.Previous}}<td class="n">{{pct .FailureRate}}</td>{{end}}</tr>
</table>
<h2>Charts</h2>
{{range .Charts}}{{if eq .Section "overview"}}
{{.Element}}
{{.Script}}
{{end}}{{end}}
<h2>Failure codes ranked</h2>
<table>
<tr><th>code</th><th>class</th><th>meaning</th><th>count</th><th>share of failures</th><th>top domain</th></tr>
{{range .Failures}}<tr><td>{{.Code}}</td><td>{{.Class}}</td><td>{{.Meaning}}</td><td class="n">{{num .Count}}</td><td class="n">{{.ShareOfFailures}}</td><td>{{with index .Domains 0}}{{.Domain}} ({{pct .ShareOfCode}}){{end}}</td></tr>
{{end}}</table>
<h2>Domains</h2>
<table>
<tr><th>domain</th><th>attempts</th><th>delivered</th><th>failure rate</th></tr>
{{range .R.Domains}}<tr><td>{{.Domain}}</td><td class="n">{{num .Attempts}}</td><td class="n">{{num .Delivered}}</td><td class="n">{{pct .FailureRate}}</td></tr>
{{end}}</table>
<h2>Findings</h2>
{{range .Charts}}{{if eq .Section "finding"}}<div class="finding">
<h3>{{.Title}}</h3>
<p>{{.Text}}</p>
<p class="action">→ {{.Action}}</p>
{{.Element}}
{{.Script}}
</div>
{{end}}{{else}}<p>None.</p>{{end}}
{{if .R.Skipped}}<h2>Skipped records</h2>
<p>{{num .R.SkippedTotal}} records skipped.</p>
<table><tr><th>source</th><th>location</th><th>reason</th></tr>
{{range .R.Skipped}}<tr><td>{{.Source}}</td><td>{{.Location}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))
