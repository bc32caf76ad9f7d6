package testbed

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// InsecureTLS accepts any server certificate (Caddy's `tls internal`
	// CA is installed nowhere).
	InsecureTLS bool
	// Cert is the client certificate to present, whatever CAs the server
	// names as acceptable (as a misconfigured or malicious client would;
	// crypto/tls would otherwise send none for a certificate from another
	// CA). Nil presents none.
	Cert *tls.Certificate
	// Loopback dials 127.0.0.1 whatever the URL's host, so a site named
	// localhost (whose TLS policy Caddy picks by SNI) is reached on IPv4.
	Loopback bool
	// Timeout bounds each request; 30 s when zero.
	Timeout time.Duration
}

// Client makes requests as a CLI does: no cookie jar, and redirects are
// answers, not followed.
type Client struct {
	HTTP *http.Client
}

// NewClient makes a Client.
func NewClient(o ClientOptions) *Client {
	tr := &http.Transport{}
	if o.InsecureTLS || o.Cert != nil {
		cfg := &tls.Config{InsecureSkipVerify: o.InsecureTLS}
		if o.Cert != nil {
			cert := o.Cert
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		tr.TLSClientConfig = cfg
	}
	if o.Loopback {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	return &Client{HTTP: &http.Client{
		Transport:     tr,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Close drops the client's idle connections.
func (c *Client) Close() {
	if tr, ok := c.HTTP.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// Reply is a fully read response.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request with header and body ("" for none) and reads the
// whole answer.
func (c *Client) Do(method, rawURL string, header http.Header, body string) (Reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return Reply{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}
