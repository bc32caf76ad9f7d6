package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPHPValue checks the PHP literals SimpleSAMLphp's configuration is
// written with: quoting, nesting, positional and keyed elements, and map
// keys in order.
func TestPHPValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{true, "true"},
		{7, "7"},
		{`it's a \ path`, `'it\'s a \\ path'`},
		{phpRaw(`SimpleSAML\Logger::DEBUG`), `SimpleSAML\Logger::DEBUG`},
		{[]string{"a", "b'"}, `['a', 'b\'']`},
		{[]any{1, "x", nil}, `[1, 'x', null]`},
		{map[string]any{"z": 1, "a": false}, "['a' => false,\n'z' => 1]"},
		{phpArray{{nil, "exampleauth:UserPass"}, {"alice:pw", phpArray{{"uid", []string{"alice"}}}}},
			"['exampleauth:UserPass',\n'alice:pw' => ['uid' => ['alice']]]"},
	} {
		got, err := phpValue(tc.in)
		if err != nil {
			t.Errorf("phpValue(%#v): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("phpValue(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if _, err := phpValue(phpArray{{"k", 1.5}}); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("phpValue of a float: %v, want an error naming the type", err)
	}
}

// TestWritePHP checks both shapes of file: one assignment per entry (the
// metadata files) and one array (the configuration).
func TestWritePHP(t *testing.T) {
	dir := t.TempDir()
	perEntry := filepath.Join(dir, "metadata.php")
	if err := writePHP(perEntry, "metadata", phpArray{{"https://sp", phpArray{{"a", 1}}}, {"https://sp2", true}}, true); err != nil {
		t.Fatal(err)
	}
	whole := filepath.Join(dir, "config.php")
	if err := writePHP(whole, "config", phpArray{{"a", 1}}, false); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		perEntry: "<?php\n$metadata['https://sp'] = ['a' => 1];\n$metadata['https://sp2'] = true;\n",
		whole:    "<?php\n$config = ['a' => 1];\n",
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s:\n%s\nwant:\n%s", filepath.Base(path), b, want)
		}
	}
	if err := writePHP(filepath.Join(dir, "bad.php"), "config", phpArray{{"k", struct{}{}}}, false); err == nil {
		t.Error("writePHP with an unsupported value did not fail")
	}
}
