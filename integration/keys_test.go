package integration

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// keyPair is the test bed's RSA key pair with test helpers.
type keyPair struct{ testbed.KeyPair }

// RSA 2048 generation takes a noticeable fraction of a second (more under
// -race), so each named pair is made once per test run and shared. Tests
// never modify a pair.
var (
	keyPairsMu sync.Mutex
	keyPairs   = map[string]keyPair{}
)

// sharedKeyPair returns the key pair called name, creating it on first use.
func sharedKeyPair(t testing.TB, name string) keyPair {
	t.Helper()
	keyPairsMu.Lock()
	defer keyPairsMu.Unlock()
	if kp, ok := keyPairs[name]; ok {
		return kp
	}
	kp := newKeyPair(t, name)
	keyPairs[name] = kp
	return kp
}

// newKeyPair makes a fresh key pair for commonName.
func newKeyPair(t testing.TB, commonName string) keyPair {
	t.Helper()
	kp, err := testbed.NewKeyPair(commonName)
	if err != nil {
		t.Fatalf("making a key pair: %v", err)
	}
	return keyPair{kp}
}

// writeFiles writes the certificate and key as PEM files into dir and
// returns their paths.
func (kp keyPair) writeFiles(t testing.TB, dir string) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, "sp.crt")
	keyPath = filepath.Join(dir, "sp.key")
	if err := kp.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
