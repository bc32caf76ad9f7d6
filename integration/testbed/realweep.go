package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoWeep says that the real Weep binary is not built here.
var ErrNoWeep = errors.New("the real Weep is not built")

// RealWeepBinary finds the real Weep (Netflix/weep) that scripts/test-deps
// builds: $WEEP_BIN, or bin/weep in CacheDir.
func RealWeepBinary() (string, error) {
	p := os.Getenv("WEEP_BIN")
	if p == "" {
		p = filepath.Join(CacheDir(), "bin", "weep")
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: no executable %s (run scripts/test-deps, which builds it, or set WEEP_BIN)", ErrNoWeep, p)
	}
	return p, nil
}

// WeepSource finds Weep's source as scripts/test-deps does: $WEEP_SOURCE,
// ../shared/weep beside the module root, or the clone in CacheDir. It
// reports "" when there is none.
func WeepSource(moduleRoot string) string {
	cands := []string{os.Getenv("WEEP_SOURCE")}
	if moduleRoot != "" {
		cands = append(cands, filepath.Join(moduleRoot, "..", "shared", "weep"))
	}
	cands = append(cands, filepath.Join(CacheDir(), "src", "weep"))
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return ""
}
