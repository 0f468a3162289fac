package advise

import (
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxCommentSQL bounds a statement's shape in a comment.
const maxCommentSQL = 160

// WriteYAML writes the advice as a YAML document whose only top-level key
// is rollups, each proposal commented with the statements it serves, the
// warehouse time it would save and its estimated rows: ready to append to
// the config (tables and rollups may be given again at its end) and load
// with SIGHUP.
func (a *Advice) WriteYAML(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# pgrollup advise: %d rollups for %d recorded statement shapes (%d statements, %.1fs of warehouse time).\n",
		len(a.Proposals), len(a.Statements), a.Total, a.TotalSeconds)
	fmt.Fprintf(&b, "# Replayed through the rewrite engine, as if built: %s of the recorded statements answered from these rollups",
		percent(a.Served, a.Total))
	if a.Existing > 0 {
		fmt.Fprintf(&b, ", %s from rollups already configured", percent(a.Existing, a.Total))
	}
	b.WriteString(".\n")
	for _, st := range a.Statements {
		if st.Skipped != "" {
			fmt.Fprintf(&b, "# no rollup can answer (%d statements): %s\n#   %s\n", st.Count, oneLine(st.Skipped), oneLine(st.shape()))
		}
	}
	if len(a.Proposals) == 0 {
		b.WriteString("rollups: []\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("rollups:\n")
	for _, p := range a.Proposals {
		fmt.Fprintf(&b, "  # serves %d statement shapes, %d statements (%s of those recorded), saving %.3fs of warehouse time; estimated rows: %d\n",
			len(p.Serves), p.Statements, percent(p.Statements, a.Total), p.Seconds, p.Rows)
		for _, i := range p.Serves {
			st := a.Statements[i]
			fmt.Fprintf(&b, "  #   %dx %.3fs: %s\n", st.Count, st.WarehouseSeconds, oneLine(st.shape()))
		}
		r := p.Rollup
		fmt.Fprintf(&b, "  - name: %s\n", scalar(r.Name))
		fmt.Fprintf(&b, "    table: %s\n", scalar(r.Table))
		list(&b, "dimensions", r.Dimensions)
		if r.TimeDimension != "" {
			fmt.Fprintf(&b, "    time_dimension: %s\n", scalar(r.TimeDimension))
			fmt.Fprintf(&b, "    granularity: %s\n", scalar(string(r.Granularity)))
		}
		list(&b, "measures", r.Measures)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func list(b *strings.Builder, key string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "    %s:\n", key)
	for _, s := range items {
		fmt.Fprintf(b, "      - %s\n", scalar(s))
	}
}

// scalar writes s as a YAML scalar that reads back as s.
func scalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s) // a JSON string is a YAML string
	}
	return strings.TrimSuffix(string(out), "\n")
}

// oneLine makes s fit on one comment line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxCommentSQL {
		s = string(r[:maxCommentSQL]) + "..."
	}
	return s
}

// shape is the statement as comments show it: without its literals.
func (st *Statement) shape() string {
	if st.Normalized != "" {
		return st.Normalized
	}
	return st.SQL
}

func percent(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(total))
}
