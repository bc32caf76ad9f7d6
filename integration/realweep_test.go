package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// realWeepBinary is the real Weep, built by scripts/test-deps; without it
// the test is skipped, or failed under CI=true.
func realWeepBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with the real Weep, skipped with -short")
	}
	bin, err := testbed.RealWeepBinary()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	return bin
}

// TestRealWeep: the real Weep CLI (Netflix/weep, unchanged) logs in through
// the module with its challenge flow and lists the roles the real
// ConsoleMe gives the user. Weep opens the challenge URL with xdg-open; the
// xdg-open on its PATH here hands the URL to the test, whose browser signs
// in at the IdP and approves, as a user would.
func TestRealWeep(t *testing.T) {
	t.Parallel()
	bin := realWeepBinary(t)
	real := sharedRealConsoleMe(t)
	e := newRealEnv(t, real)

	// Weep's config where README's deployment checklist puts it.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".weep"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, ".weep", "weep.yaml")
	if err := os.WriteFile(cfg, []byte("consoleme_url: "+e.Base+"\nauthentication_method: challenge\n"+
		"challenge_settings:\n  user: "+userAlice.Email+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opener := t.TempDir()
	urlFile := filepath.Join(opener, "url")
	script := "#!/bin/sh\nprintf '%s' \"$1\" >" + urlFile + ".tmp && mv " + urlFile + ".tmp " + urlFile + "\n"
	if err := os.WriteFile(filepath.Join(opener, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "list")
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "HOME="+home, "PATH="+opener+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var challengeURL string
	err := testbed.WaitFor(30*time.Second, 100*time.Millisecond, func() error {
		b, err := os.ReadFile(urlFile)
		challengeURL = string(b)
		return err
	})
	if err != nil {
		cancel()
		<-done
		t.Fatalf("Weep opened no challenge URL: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(challengeURL, e.Base+"/challenge_validator/") {
		t.Fatalf("Weep opened %q, want the module's validator under %s", challengeURL, e.Base)
	}

	b := newBrowser(t)
	e.login(t, b, userAlice, challengeURL)
	p, form := e.openApproval(t, b, challengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, form)

	if err := <-done; err != nil {
		t.Fatalf("weep list: %v\n%s", err, out.String())
	}
	// Weep saved the poller's answer and listed the roles ConsoleMe gives
	// alice (get_roles with all=true: her CLI-only roles too).
	saved, err := os.ReadFile(filepath.Join(home, ".weep", "credentials"))
	if err != nil {
		t.Fatalf("Weep saved no credentials: %v\n%s", err, out.String())
	}
	var creds struct {
		User       string `json:"user"`
		CookieName string `json:"cookie_name"`
		EncodedJWT string `json:"encoded_jwt"`
	}
	if err := json.Unmarshal(saved, &creds); err != nil || creds.User != userAlice.Email || creds.EncodedJWT == "" || creds.CookieName != "consoleme_auth" {
		t.Errorf("Weep's saved credentials %s (%v), want alice's token under consoleme_auth", saved, err)
	}
	want := real.CM.Mapping.RolesFor(userAlice.Email, userAlice.Groups, true)
	var got []string
	for _, role := range want {
		if strings.Contains(out.String(), role) {
			got = append(got, role)
		}
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("weep list names %v of alice's roles %v:\n%s", got, want, out.String())
	}
	for _, other := range []string{"dave_personal", "aws-root"} {
		if strings.Contains(out.String(), other) {
			t.Errorf("weep list names %s, a role alice does not have:\n%s", other, out.String())
		}
	}
}
