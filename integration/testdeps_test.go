package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// TestFetchSourceFromGit proves the path scripts/test-deps takes on a
// machine without ../shared: the real ConsoleMe and the real Weep cloned
// from git at a pinned commit, then installed and run. A file:// repository
// made here from the local copy of each source stands in for GitHub; it has
// a newer commit on top of the pinned one, so checking out the tip instead
// of the pin would show.
func TestFetchSourceFromGit(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("clones, installs and starts the real ConsoleMe and builds the real Weep; skipped with -short")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		skipOrFail(t, "git is not installed (apt-get install git)")
	}
	launcher := realConsoleMeLauncher(t)
	cmSrc, weepSrc := testbed.ConsoleMeSource(root), testbed.WeepSource(root)
	if cmSrc == "" || weepSrc == "" {
		skipOrFail(t, "no local ConsoleMe or Weep source to make the stand-in repositories from: run scripts/test-deps")
	}
	fetch := filepath.Join(root, "scripts", "fetch-source")
	work := t.TempDir()

	t.Run("consoleme", func(t *testing.T) {
		url, pinned := gitRepoWithNewerCommit(t, filepath.Join(work, "consoleme-repo"), cmSrc, "setup.py", "consoleme")
		dest := filepath.Join(work, "cache", "src", "consoleme")
		checkFetch(t, fetch, dest, url, pinned)

		home := filepath.Join(work, "real-consoleme")
		run(t, nil, "bash", filepath.Join(launcher, "setup.sh"), dest, home)
		env := []string{"REAL_CONSOLEME_HOME=" + home}
		runDir := filepath.Join(work, "run")
		ports := freePorts(t, 2)
		run(t, env, "bash", filepath.Join(launcher, "start.sh"), fmt.Sprint(ports[0]), fmt.Sprint(ports[1]), "fetch-test-secret", runDir)
		defer run(t, env, "bash", filepath.Join(launcher, "stop.sh"), runDir)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", ports[0]))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the ConsoleMe installed from the clone answers /healthcheck with %s", resp.Status)
		}
	})

	t.Run("weep", func(t *testing.T) {
		url, pinned := gitRepoWithNewerCommit(t, filepath.Join(work, "weep-repo"), weepSrc, ".")
		dest := filepath.Join(work, "cache", "src", "weep")
		checkFetch(t, fetch, dest, url, pinned[:7])
		bin := filepath.Join(work, "weep")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = dest
		cmd.Env = append(os.Environ(), "GOFLAGS=-modcacherw")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building Weep from the clone: %v\n%s", err, out)
		}
		out := run(t, nil, bin, "--help")
		if !strings.Contains(out, "weep") {
			t.Errorf("the Weep built from the clone says:\n%s", out)
		}
	})
}

// checkFetch runs fetch-source twice: the first run clones url into dest at
// commit, the second reuses the clone.
func checkFetch(t *testing.T, fetch, dest, url, commit string) {
	t.Helper()
	first := run(t, nil, fetch, dest, url, commit)
	if !strings.Contains(first, "cloning") {
		t.Errorf("the first fetch did not clone:\n%s", first)
	}
	head := strings.TrimSpace(run(t, nil, "git", "-C", dest, "rev-parse", "HEAD"))
	if !strings.HasPrefix(head, commit) {
		t.Errorf("the clone is at %s, want the pinned %s", head, commit)
	}
	if _, err := os.Stat(filepath.Join(dest, "NEWER")); err == nil {
		t.Error("the clone has the newer commit's file: it is at the tip, not at the pin")
	}
	if second := run(t, nil, fetch, dest, url, commit); strings.Contains(second, "cloning") {
		t.Errorf("the second fetch cloned again instead of reusing the clone:\n%s", second)
	}
}

// gitRepoWithNewerCommit makes a git repository in dir holding paths of src
// (the pinned commit, returned as a full id) and one more commit on top,
// and returns its file:// URL.
func gitRepoWithNewerCommit(t *testing.T, dir, src string, paths ...string) (url, pinned string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		from := filepath.Join(src, p)
		if p == "." {
			from = src + "/." // the contents, not the directory
		}
		run(t, nil, "cp", "-a", from, dir+"/")
	}
	run(t, nil, "chmod", "-R", "u+w", dir) // the source may be read-only
	git := func(args ...string) string {
		return run(t, nil, "git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...)
	}
	git("init", "--quiet")
	git("add", "-A")
	git("commit", "--quiet", "-m", "pinned")
	pinned = strings.TrimSpace(git("rev-parse", "HEAD"))
	if err := os.WriteFile(filepath.Join(dir, "NEWER"), []byte("a later commit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "NEWER")
	git("commit", "--quiet", "-m", "newer")
	return "file://" + dir, pinned
}

// run runs a command with extra environment and returns its combined
// output, failing the test when it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
