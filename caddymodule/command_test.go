package consolemeauth

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
)

func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var cmd = spKeypairCommand()
	switch args[0] {
	case "decode":
		cmd = decodeCommand()
	case "metadata":
		cmd = metadataCommand()
	case "revoke":
		cmd = revokeCommand()
	case "sessions":
		cmd = sessionsCommand()
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args[1:])
	err := cmd.Execute()
	return out.String(), err
}

func TestSPKeypairAndMetadataCommands(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "sp.crt"), filepath.Join(dir, "sp.key")
	if _, err := runCommand(t, "sp-keypair", "--cert", crt, "--key", key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v", fi.Mode(), err)
	}
	// The pair is usable by the handler's saml block.
	if _, err := samlauth.New(samlauth.Config{SPCert: crt, SPKey: key, IDPMetadataURL: "https://idp.invalid/metadata"}, nil); err != nil {
		t.Fatalf("generated pair refused: %v", err)
	}
	if _, err := runCommand(t, "sp-keypair", "--cert", crt, "--key", key); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrote without --force: %v", err)
	}
	if _, err := runCommand(t, "sp-keypair", "--cert", crt, "--key", key, "--force"); err != nil {
		t.Errorf("--force: %v", err)
	}

	out, err := runCommand(t, "metadata", "--public-url", "https://cm.example.com/", "--sp-cert", crt, "--sp-key", key)
	if err != nil {
		t.Fatal(err)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if md.EntityID != "https://cm.example.com/saml/metadata" ||
		md.SPSSODescriptors[0].AssertionConsumerServices[0].Location != "https://cm.example.com/saml/acs" {
		t.Errorf("metadata %s", out)
	}
	if _, err := runCommand(t, "metadata", "--public-url", "https://cm.example.com"); err == nil {
		t.Error("metadata without keys accepted")
	}
	// --data-ciphers: the metadata advertises exactly those, as the site's.
	out, err = runCommand(t, "metadata", "--public-url", "https://cm.example.com/", "--sp-cert", crt, "--sp-key", key,
		"--data-ciphers", "aes256-gcm,aes128-gcm")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "xmlenc11#aes256-gcm") || strings.Contains(out, "aes128-cbc") {
		t.Errorf("--data-ciphers aes256-gcm,aes128-gcm: %s", out)
	}
	if _, err := runCommand(t, "metadata", "--public-url", "https://cm.example.com/", "--sp-cert", crt, "--sp-key", key,
		"--data-ciphers", "rc4"); err == nil || !strings.Contains(err.Error(), "data_ciphers") {
		t.Errorf("--data-ciphers rc4: %v", err)
	}
}

func TestDecodeCommand(t *testing.T) {
	h := newTestHandler(t, nil)
	jwt, _, _ := h.sessions.codec.Mint("alice@example.com", []string{"eng"}, time.Now())
	var out bytes.Buffer
	if err := decodeToken(&out, jwt, "", "email", "groups", time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"email": "alice@example.com"`) || !strings.Contains(out.String(), "not checked") {
		t.Errorf("without secret: %s", out.String())
	}
	out.Reset()
	if err := decodeToken(&out, jwt, testSecret, "email", "groups", time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "accept it: yes, as alice@example.com with 1 groups") {
		t.Errorf("with secret: %s", out.String())
	}
	out.Reset()
	err := decodeToken(&out, jwt, "s3cr3t-other-value", "email", "groups", time.Now())
	if err == nil || !strings.Contains(out.String(), "accept it: no") {
		t.Errorf("wrong secret: %v %s", err, out.String())
	}
	if strings.Contains(out.String(), "s3cr3t-other-value") {
		t.Error("secret printed")
	}
	if err := decodeToken(&out, "garbage", "", "email", "groups", time.Now()); err == nil {
		t.Error("garbage decoded")
	}
	t.Setenv("CMA_TEST_SECRET", testSecret)
	got, err := runCommand(t, "decode", "--secret-env", "CMA_TEST_SECRET", jwt)
	if err != nil || !strings.Contains(got, "yes") {
		t.Errorf("command: %v %s", err, got)
	}
}
