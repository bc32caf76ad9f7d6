package main

import (
	"strings"
	"testing"
	"time"
)

// A run as `go test -json` reports it: one package passes with a skipped
// test and a skipped subtest, one fails.
const stream = `{"Action":"start","Package":"example.com/m/a"}
{"Action":"run","Package":"example.com/m/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestOK","Output":"    a_test.go:5: chatter of a passing test\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"example.com/m/a","Test":"TestOK"}
{"Action":"run","Package":"example.com/m/a","Test":"TestBrowser"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBrowser","Output":"=== RUN   TestBrowser\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBrowser","Output":"    a_test.go:9: no Chromium: apt-get install chromium\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestBrowser","Output":"--- SKIP: TestBrowser (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestBrowser"}
{"Action":"run","Package":"example.com/m/a","Test":"TestTabs/one"}
{"Action":"output","Package":"example.com/m/a","Test":"TestTabs/one","Output":"    a_test.go:19: no Chromium: apt-get install chromium\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestTabs/one"}
{"Action":"output","Package":"example.com/m/a","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m/a","Output":"ok  \texample.com/m/a\t0.1s\n"}
{"Action":"pass","Package":"example.com/m/a","Elapsed":0.1}
{"Action":"run","Package":"example.com/m/b","Test":"TestBad"}
{"Action":"output","Package":"example.com/m/b","Test":"TestBad","Output":"    b_test.go:3: want 1, got 2\n"}
{"Action":"output","Package":"example.com/m/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/b","Test":"TestBad"}
{"Action":"run","Package":"example.com/m/b","Test":"TestNoReason"}
{"Action":"skip","Package":"example.com/m/b","Test":"TestNoReason"}
{"Action":"output","Package":"example.com/m/b","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/b","Output":"FAIL\texample.com/m/b\t0.2s\n"}
{"Action":"fail","Package":"example.com/m/b","Elapsed":0.2}
not json: vet says something
`

func TestSummary(t *testing.T) {
	var out strings.Builder
	s := newSummary(&out)
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	s.report(3 * time.Second)
	got := out.String()
	for _, want := range []string{
		"ok  \texample.com/m/a\t0.1s\n",
		"    b_test.go:3: want 1, got 2\n",
		"FAIL\texample.com/m/b\t0.2s\n",
		"not json: vet says something\n",
		"SKIP 2: no Chromium: apt-get install chromium [example.com/m/a.TestBrowser, example.com/m/a.TestTabs/one]\n",
		"SKIP 1: (no reason given) [example.com/m/b.TestNoReason]\n",
		"2 packages (1 failed) in 3s\ntests: 1 passed, 1 failed, 3 skipped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary lacks %q:\n%s", want, got)
		}
	}
	// What plain go test hides stays hidden: a passing test's output and
	// a passing package's PASS line.
	for _, hidden := range []string{"chatter of a passing test", "PASS\n"} {
		if strings.Contains(strings.ReplaceAll(got, "--- PASS", ""), hidden) {
			t.Errorf("the summary shows %q, which go test hides:\n%s", hidden, got)
		}
	}
	if s.failed != 1 || s.pkgFails != 1 {
		t.Errorf("failed tests %d, packages %d; want 1 and 1", s.failed, s.pkgFails)
	}
}
