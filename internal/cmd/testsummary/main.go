// Command testsummary reads the JSON events of `go test -json` on standard
// input and prints what a plain `go test` prints (the package result lines,
// and the output of failed tests and failed packages), then one line per
// reason a test was skipped, naming the tests, and a count. A plain
// `go test ./...` shows nothing of a passing package, so a suite that
// skipped itself, because something it needs is missing, would go unseen;
// scripts/test pipes the run through this command so it cannot.
//
// It exits 1 when the input holds a failed test or package, or no event at
// all, else 0; scripts/test exits with go test's own status either way.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
	Elapsed    float64
}

// skip is one skipped test and its reason.
type skip struct {
	Package, Test, Reason string
}

type summary struct {
	out      io.Writer
	outputs  map[string][]string // package + "\x00" + test → its output lines
	pkgOut   map[string][]string // package → its own output lines
	skips    []skip
	passed   int
	failed   int
	pkgs     map[string]bool
	pkgFails int
	events   int
}

func main() {
	start := time.Now()
	s := newSummary(os.Stdout)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	s.report(time.Since(start))
	if s.failed > 0 || s.pkgFails > 0 || s.events == 0 {
		os.Exit(1)
	}
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, outputs: map[string][]string{}, pkgOut: map[string][]string{}, pkgs: map[string]bool{}}
}

// read consumes the event stream, printing as plain go test would.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go vet or the go command said something):
			// show it as it is.
			fmt.Fprintln(s.out, string(line))
			continue
		}
		s.events++
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.out, e.Output)
	case e.Action == "output" && e.Test != "":
		s.outputs[key] = append(s.outputs[key], e.Output)
	case e.Action == "output":
		s.pkgOut[e.Package] = append(s.pkgOut[e.Package], e.Output)
	case e.Test != "" && e.Action == "pass":
		s.passed++
		delete(s.outputs, key)
	case e.Test != "" && e.Action == "fail":
		s.failed++
		for _, l := range s.outputs[key] {
			fmt.Fprint(s.out, l)
		}
		delete(s.outputs, key)
	case e.Test != "" && e.Action == "skip":
		s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(s.outputs[key])})
		delete(s.outputs, key)
	case e.Test == "" && (e.Action == "pass" || e.Action == "skip" || e.Action == "fail"):
		s.pkgs[e.Package] = true
		lines := s.pkgOut[e.Package]
		delete(s.pkgOut, e.Package)
		if e.Action == "fail" {
			s.pkgFails++
			for _, l := range lines {
				fmt.Fprint(s.out, l)
			}
			return
		}
		// A passing package shows only its result line, as in go test.
		for _, l := range lines {
			if strings.HasPrefix(l, "ok  ") || strings.HasPrefix(l, "?   ") {
				fmt.Fprint(s.out, l)
			}
		}
	}
}

var (
	// "    file_test.go:12: message" → "message"
	logPrefix = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)
	frame     = regexp.MustCompile(`^(=== |--- SKIP|--- PASS|--- FAIL)`)
)

// skipReason is a skipped test's own message: its output less the
// framework's lines and the file:line prefix, on one line.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		if frame.MatchString(strings.TrimLeft(l, " ")) {
			continue
		}
		l = strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))
		if l != "" {
			msg = append(msg, l)
		}
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

// report prints one line per skip reason and the counts.
func (s *summary) report(wall time.Duration) {
	byReason := map[string][]skip{}
	for _, k := range s.skips {
		byReason[k.Reason] = append(byReason[k.Reason], k)
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(s.out, "\nSkipped tests, by reason:\n")
	}
	for _, r := range reasons {
		ks := byReason[r]
		names := make([]string, 0, len(ks))
		for _, k := range ks {
			names = append(names, shortPackage(k.Package)+"."+k.Test)
		}
		sort.Strings(names)
		fmt.Fprintf(s.out, "SKIP %d: %s [%s]\n", len(ks), r, strings.Join(names, ", "))
	}
	// The last line is the plain count alone, as test harnesses read it.
	fmt.Fprintf(s.out, "\n%d packages (%d failed) in %s\ntests: %d passed, %d failed, %d skipped\n",
		len(s.pkgs), s.pkgFails, wall.Round(time.Second), s.passed, s.failed, len(s.skips))
}

// shortPackage drops the module path, so the lines stay readable.
func shortPackage(p string) string {
	const module = "github.com/consoleme-auth/caddy-consoleme-auth/"
	if rest, ok := strings.CutPrefix(p, module); ok {
		return rest
	}
	return p
}
