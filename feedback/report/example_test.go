package report_test

import (
	"fmt"
	"time"

	"github.com/bounceloop/bounceloop/feedback/report"
)

func ExampleAnalyze() {
	c := report.NewCounts(time.UTC)
	for day := 1; day <= 30; day++ {
		at := time.Date(2018, time.May, day, 9, 0, 0, 0, time.UTC)
		c.Add(at, "example.com", 250, 990)
		c.Add(at, "example.com", 550, 10)
	}
	r, err := report.Analyze(c, report.Options{
		Month: report.Month{Year: 2018, Month: time.May},
		Now:   time.Date(2018, time.June, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Totals.Attempts, r.Totals.Failed, r.Totals.FailureRate)
	for _, f := range r.Findings {
		fmt.Println(f.Kind, f.Code, f.Domain, f.Value)
	}
	// Output:
	// 30000 300 0.01
	// concentrated 550 example.com 1
}
