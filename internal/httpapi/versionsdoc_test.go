package httpapi_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/httpapi"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the version table in docs/compatibility.md")

const (
	tableBegin = "<!-- version table: generated from internal/httpapi/versions.go by go test ./internal/httpapi -run TestVersionTableDoc -update-docs -->"
	tableEnd   = "<!-- end of version table -->"
)

// TestVersionTableDoc keeps the table of microversions in docs/compatibility.md equal to the
// one in the code.
func TestVersionTableDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString(tableBegin + "\n\n| version | adds | here |\n|---|---|---|\n")
	for _, f := range httpapi.Versions() {
		here := f.Support.String()
		if f.By != "" {
			here += ": " + f.By
		}
		fmt.Fprintf(&b, "| 1.%d | %s | %s |\n", f.Minor, strings.ReplaceAll(f.Adds, "|", "\\|"), here)
	}
	b.WriteString("\n" + tableEnd)
	const path = "../../docs/compatibility.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(doc), tableBegin), strings.Index(string(doc), tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no version table markers", path)
	}
	current := string(doc[i : j+len(tableEnd)])
	if current == b.String() {
		return
	}
	if !*updateDocs {
		t.Fatalf("the version table in %s is out of date: run go test ./internal/httpapi -run TestVersionTableDoc -update-docs", path)
	}
	out := string(doc[:i]) + b.String() + string(doc[j+len(tableEnd):])
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
