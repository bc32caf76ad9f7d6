package oidcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSSize bounds the JWKS read from the jwks_uri.
const maxJWKSSize = 1 << 20

// keyCache holds the provider's signature keys, the last good copy of its
// JWKS. It is the go-oidc KeySet of the ID token verifier: Run refreshes
// it at every DiscoveryRefresh, so that a key the provider removed stops
// being trusted, and a token signed by a key it does not hold makes it
// fetch the JWKS again at once, so that a new key is trusted without
// waiting. go-oidc checks the algorithm before it asks for the signature.
type keyCache struct {
	url    string
	client *http.Client

	mu   sync.RWMutex
	keys []jose.JSONWebKey
	gen  uint64 // counts successful fetches

	fetchMu sync.Mutex // one fetch at a time
}

// newKeyCache makes an empty cache of the JWKS at url.
func newKeyCache(url string, client *http.Client) *keyCache {
	return &keyCache{url: url, client: client}
}

// snapshot returns the current keys and their generation.
func (k *keyCache) snapshot() ([]jose.JSONWebKey, uint64) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.gen
}

// refresh fetches the JWKS and, when it holds a usable key, makes it the
// current set. On failure the last good copy stays.
func (k *keyCache) refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.fetchLocked(ctx)
}

// refreshUnless fetches the JWKS unless another fetch succeeded since
// generation seen: concurrent verifications of a token with a new key
// share one fetch.
func (k *keyCache) refreshUnless(ctx context.Context, seen uint64) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if _, gen := k.snapshot(); gen != seen {
		return nil
	}
	return k.fetchLocked(ctx)
}

// fetchLocked fetches and installs the JWKS; fetchMu is held.
func (k *keyCache) fetchLocked(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return err
	}
	if len(data) > maxJWKSSize {
		return errors.New("JWKS larger than 1 MiB")
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys = keys
	k.gen++
	k.mu.Unlock()
	return nil
}

// parseJWKS keeps the public signature keys of a JWK set. Keys it cannot
// use (another type, meant for encryption, private or malformed) are
// skipped, so that one odd key does not hide the others; a set without a
// usable key is an error.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parsing the JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWKS holds no usable public signature key")
	}
	return keys, nil
}

// VerifySignature implements oidc.KeySet: it returns the payload of the
// JWS jwt when a key of the cache, chosen by the kid of its header (any
// key without one), verifies it. When none does, it fetches the JWKS once
// and tries again.
func (k *keyCache) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, joseAlgs())
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the JWS must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, gen := k.snapshot()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if err := k.refreshUnless(ctx, gen); err != nil {
		return nil, fmt.Errorf("no known key verifies the signature (kid %q), and fetching the JWKS failed: %w", kid, err)
	}
	keys, _ = k.snapshot()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, fmt.Errorf("no key of the JWKS verifies the signature (kid %q)", kid)
}

// verifyWith tries the keys whose ID is kid (all of them when kid is
// empty).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// joseAlgs is signingAlgs as go-jose spells them.
func joseAlgs() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(signingAlgs))
	for i, a := range signingAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}
