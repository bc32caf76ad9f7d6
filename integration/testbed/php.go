package testbed

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// SimpleSAMLphp reads its configuration and metadata from PHP files that
// fill an array variable. This file renders Go values as PHP literals and
// writes those files.

// phpRaw is PHP source inserted as is, such as a constant.
type phpRaw string

// phpKV is one element of a PHP array; a nil key makes it positional.
type phpKV struct {
	K any
	V any
}

// phpArray is an ordered PHP array, which may mix positional and keyed
// elements as SimpleSAMLphp's configuration does.
type phpArray []phpKV

// sortedKVs is m as a PHP array with its keys in order, so the files are
// the same from run to run.
func sortedKVs(m map[string]any) phpArray {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var a phpArray
	for _, k := range keys {
		a = append(a, phpKV{k, m[k]})
	}
	return a
}

// phpValue renders v as a PHP literal. It accepts nil, phpRaw, string,
// bool, int, []string, []any, map[string]any (keys in order) and phpArray.
func phpValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "null", nil
	case phpRaw:
		return string(v), nil
	case string:
		return phpString(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = phpString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			s, err := phpValue(x)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case map[string]any:
		return phpValue(sortedKVs(v))
	case phpArray:
		parts := make([]string, len(v))
		for i, kv := range v {
			val, err := phpValue(kv.V)
			if err != nil {
				return "", err
			}
			if kv.K == nil {
				parts[i] = val
				continue
			}
			key, err := phpValue(kv.K)
			if err != nil {
				return "", err
			}
			parts[i] = key + " => " + val
		}
		return "[" + strings.Join(parts, ",\n") + "]", nil
	}
	return "", fmt.Errorf("rendering a PHP value: unsupported type %T", v)
}

// phpString is a single-quoted PHP string, in which only the backslash and
// the quote need escaping.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// renderPHP is a PHP file that fills the variable name: with perEntry, one
// `$name[key] = value;` per element (SimpleSAMLphp's metadata files),
// otherwise `$name = [...];`.
func renderPHP(name string, a phpArray, perEntry bool) (string, error) {
	var b strings.Builder
	b.WriteString("<?php\n")
	if !perEntry {
		v, err := phpValue(a)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "$%s = %s;\n", name, v)
		return b.String(), nil
	}
	for _, kv := range a {
		key, err := phpValue(kv.K)
		if err != nil {
			return "", err
		}
		val, err := phpValue(kv.V)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "$%s[%s] = %s;\n", name, key, val)
	}
	return b.String(), nil
}

// writePHP writes renderPHP's file to path (mode 0600).
func writePHP(path, name string, a phpArray, perEntry bool) error {
	src, err := renderPHP(name, a, perEntry)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
