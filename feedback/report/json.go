package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes r as indented JSON (the automation interface; see the
// README). The output is stable: slices are sorted by the analysis and map
// keys by encoding/json.
func WriteJSON(w io.Writer, r *Report) error {
	out := *r
	if out.Codes == nil {
		out.Codes = []CodeStat{}
	}
	for i := range out.Codes {
		if out.Codes[i].Domains == nil {
			out.Codes[i].Domains = []CodeDomain{}
		}
	}
	if out.Domains == nil {
		out.Domains = []DomainStat{}
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	if out.Skipped == nil {
		out.Skipped = []Skipped{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(&out)
}
