package consolemeauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "consoleme-auth",
		Usage: "sp-keypair | decode | metadata | revoke | sessions",
		Short: "Helpers for the consoleme_auth handler",
		Long: `
Helpers for operating the consoleme_auth handler:

  sp-keypair  write a fresh SAML SP key and self-signed certificate
  decode      show a ConsoleMe JWT's claims and check it with ConsoleMe's rules
  metadata    print the SP metadata an IdP administrator needs
  revoke      end a user's sessions (or one session) on the running Caddy
  sessions    list a user's live sessions on the running Caddy
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(spKeypairCommand(), decodeCommand(), metadataCommand(), revokeCommand(), sessionsCommand())
		},
	})
}

func spKeypairCommand() *cobra.Command {
	var certPath, keyPath, cn string
	var days int
	var force bool
	c := &cobra.Command{
		Use:   "sp-keypair",
		Short: "Write a fresh SAML SP key (RSA 2048, PKCS#8) and self-signed certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := writeKeypair(certPath, keyPath, cn, days, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (key mode 0600)\n", certPath, keyPath)
			return nil
		},
	}
	c.Flags().StringVar(&certPath, "cert", "saml-sp.crt", "certificate file to write")
	c.Flags().StringVar(&keyPath, "key", "saml-sp.key", "private key file to write")
	c.Flags().StringVar(&cn, "cn", "consoleme-auth SAML SP", "certificate subject common name")
	c.Flags().IntVar(&days, "days", 730, "certificate validity in days")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return c
}

// writeKeypair makes an SP key pair; it refuses to overwrite unless forced.
func writeKeypair(certPath, keyPath, cn string, days int, force bool) error {
	if days <= 0 {
		return errors.New("--days must be positive")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, days),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	write := func(path string, mode os.FileMode, blk *pem.Block) error {
		f, err := os.OpenFile(path, flags, mode)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists (use --force to overwrite)", path)
			}
			return err
		}
		if err := pem.Encode(f, blk); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(keyPath, 0o600, &pem.Block{Type: "PRIVATE KEY", Bytes: pk}); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := write(certPath, 0o644, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return fmt.Errorf("writing certificate: %w", err)
	}
	return nil
}

func decodeCommand() *cobra.Command {
	var secretEnv, emailClaim, groupsClaim string
	c := &cobra.Command{
		Use:   "decode <jwt>",
		Short: "Show a ConsoleMe JWT's claims and check it with ConsoleMe's rules",
		Long: `Prints the token's header and claims. When the environment variable named by
--secret-env (default CONSOLEME_JWT_SECRET) holds ConsoleMe's jwt_secret, it also
says whether ConsoleMe would accept the token, and why not. The secret is read
from the environment so that it stays out of shell history. Reads the token from
standard input when the argument is "-".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok := args[0]
			if tok == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				if err != nil {
					return err
				}
				tok = strings.TrimSpace(string(b))
			}
			return decodeToken(cmd.OutOrStdout(), tok, os.Getenv(secretEnv), emailClaim, groupsClaim, time.Now())
		},
	}
	c.Flags().StringVar(&secretEnv, "secret-env", "CONSOLEME_JWT_SECRET", "environment variable holding jwt_secret")
	c.Flags().StringVar(&emailClaim, "email-claim", DefaultEmailClaim, "ConsoleMe's jwt.attributes.email")
	c.Flags().StringVar(&groupsClaim, "groups-claim", DefaultGroupsClaim, "ConsoleMe's jwt.attributes.groups")
	return c
}

// decodeToken prints a token's parts and, given the secret, its verdict.
func decodeToken(w io.Writer, tok, secret, emailClaim, groupsClaim string, now time.Time) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT: want three dot-separated parts")
	}
	for i, name := range []string{"header", "claims"} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("decoding %s: %w", name, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decoding %s: %w", name, err)
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(w, "%s: %s\n", name, pretty)
		if m, ok := v.(map[string]any); ok && name == "claims" {
			for _, c := range []string{"nbf", "iat", "exp"} {
				if f, ok := m[c].(float64); ok {
					fmt.Fprintf(w, "%s: %s\n", c, time.Unix(int64(f), 0).UTC().Format(time.RFC3339))
				}
			}
		}
	}
	if secret == "" {
		fmt.Fprintln(w, "signature: not checked (no secret in the environment)")
		return nil
	}
	m, err := token.NewCodec(secret, emailClaim, groupsClaim, time.Hour)
	if err != nil {
		return err
	}
	id, err := m.Verify(tok, now)
	if err != nil {
		fmt.Fprintf(w, "ConsoleMe would accept it: no (%v)\n", err)
		return errors.New("token rejected")
	}
	fmt.Fprintf(w, "ConsoleMe would accept it: yes, as %s with %d groups, for %s more\n",
		id.Email, len(id.Groups), id.Expires.Sub(now).Round(time.Second))
	return nil
}

func metadataCommand() *cobra.Command {
	var publicURL, certPath, keyPath, entityID, nameIDFormat string
	var validFor time.Duration
	var signRequests bool
	var dataCiphers []string
	c := &cobra.Command{
		Use:   "metadata --public-url <url> --sp-cert <file> --sp-key <file>",
		Short: "Print the SAML SP metadata an IdP administrator needs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := spMetadataFor(publicURL, samlauth.Config{SPCert: certPath, SPKey: keyPath, EntityID: entityID,
				NameIDFormat: nameIDFormat, SignAuthnRequests: signRequests, DataCiphers: dataCiphers}, validFor)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	c.Flags().StringVar(&publicURL, "public-url", "", "the site's public_url (required)")
	c.Flags().StringVar(&certPath, "sp-cert", "", "SP certificate file (required)")
	c.Flags().StringVar(&keyPath, "sp-key", "", "SP key file (required)")
	c.Flags().StringVar(&entityID, "entity-id", "", "SP entity ID (default <public-url>/saml/metadata)")
	c.Flags().StringVar(&nameIDFormat, "name-id-format", "", "unspecified, email, persistent or transient")
	c.Flags().DurationVar(&validFor, "valid-for", 0, "set validUntil this far ahead (default: none, valid until replaced)")
	c.Flags().BoolVar(&signRequests, "sign-authn-requests", false, "say AuthnRequestsSigned, as the saml block's sign_authn_requests does")
	c.Flags().StringSliceVar(&dataCiphers, "data-ciphers", nil, "the saml block's data_ciphers, comma-separated (default: aes128-cbc,aes192-cbc,aes256-cbc)")
	return c
}

// spMetadataFor builds SP metadata from the same settings as the saml
// block. A file imported once by an IdP administrator carries no validUntil
// unless validFor asks for one.
func spMetadataFor(publicURL string, cfg samlauth.Config, validFor time.Duration) ([]byte, error) {
	if publicURL == "" || cfg.SPCert == "" || cfg.SPKey == "" {
		return nil, errors.New("--public-url, --sp-cert and --sp-key are required")
	}
	base, err := parsePublicURL(publicURL)
	if err != nil {
		return nil, fmt.Errorf("--public-url: %w", err)
	}
	return samlauth.SPMetadata(cfg, base.String(), validFor)
}
