// Command app is the demo that `go run ./cmd/demo` builds and runs (see
// cmd/demo for what it does): the whole ConsoleMe CLI challenge login on
// this machine, with nothing to configure, and `login`, a Weep-like client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Fixed default ports, so the printed commands stay the same from run to run.
// They are unusual enough not to clash with a ConsoleMe (8081) or a dev server
// (8080); 0 picks a free port.
const (
	defaultCaddyPort    = 8480
	defaultIdPPort      = 8481
	defaultUpstreamPort = 8482
)

// config is everything the demo can be told; the zero value of a port means
// "any free port".
type config struct {
	CaddyPort    int
	IdPPort      int
	UpstreamPort int

	// User is the demo user's email: the ConsoleMe user name the CLI asks
	// for, and the login name at the demo IdP.
	User     string
	Password string
	Groups   []string

	// LogLevel is Caddy's log level (DEBUG, INFO, WARN, ERROR). At INFO the
	// module's audit lines (challenge created, SAML login, approved,
	// collected) show each step as it happens.
	LogLevel string

	// OIDC signs in at a real OpenID provider (oidc-provider on Node.js)
	// instead of the demo SAML IdP.
	OIDC bool

	// ConsoleMe is the real ConsoleMe's launcher directory,
	// integration/realconsoleme (start.sh, stop.sh); when set, the real
	// ConsoleMe that scripts/test-deps installed runs behind Caddy instead
	// of the stand-in.
	ConsoleMe string
}

func defaultConfig() config {
	return config{
		CaddyPort:    defaultCaddyPort,
		IdPPort:      defaultIdPPort,
		UpstreamPort: defaultUpstreamPort,
		User:         "alice@example.com",
		Password:     "demo",
		Groups:       []string{"engineering", "consoleme-users"},
		LogLevel:     "INFO",
		ConsoleMe:    os.Getenv("REAL_CONSOLEME_DIR"),
	}
}

func main() {
	// Ctrl-C (or SIGTERM) cancels ctx and everything shuts down cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// A second Ctrl-C kills the process at once, in case the clean
		// shutdown hangs.
		stop()
	}()

	var err error
	if len(os.Args) > 1 && os.Args[1] == "login" {
		err = loginMain(ctx, os.Args[2:], os.Stdout)
	} else {
		err = demoMain(ctx, os.Args[1:], os.Stdout)
	}
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demoMain parses the demo's flags and runs it until ctx is cancelled.
func demoMain(ctx context.Context, args []string, out io.Writer) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/demo [flags]\n"+
			"       go run ./cmd/demo login [-url URL] [-no-open] [user]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.CaddyPort, "caddy-port", cfg.CaddyPort, "port of Caddy, where the CLI and the browser talk to ConsoleMe (0: any free port)")
	fs.IntVar(&cfg.IdPPort, "idp-port", cfg.IdPPort, "port of the demo SAML IdP (0: any free port)")
	fs.IntVar(&cfg.UpstreamPort, "upstream-port", cfg.UpstreamPort, "port of the stand-in ConsoleMe behind Caddy (0: any free port)")
	fs.StringVar(&cfg.User, "user", cfg.User, "the demo user's email, also its login name at the IdP")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "the demo user's password at the IdP")
	groups := fs.String("groups", strings.Join(cfg.Groups, ","), "the demo user's groups, comma-separated")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "Caddy's log level: DEBUG, INFO, WARN or ERROR")
	fs.BoolVar(&cfg.OIDC, "oidc", cfg.OIDC, "sign in with OpenID Connect at a real OpenID provider (oidc-provider, needs Node.js and npm) instead of the demo SAML IdP")
	fs.StringVar(&cfg.ConsoleMe, "consoleme", cfg.ConsoleMe, "the real ConsoleMe's launcher, integration/realconsoleme (install ConsoleMe first with scripts/test-deps): run the real ConsoleMe behind Caddy instead of the stand-in (default $REAL_CONSOLEME_DIR)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (see -h)", rest[0])
	}
	cfg.Groups = splitList(*groups)
	return run(ctx, cfg, out)
}

// run starts the demo, prints how to use it to out and keeps it running
// until ctx is cancelled; then it stops everything and removes its files.
func run(ctx context.Context, cfg config, out io.Writer) error {
	d, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	d.printInstructions(out)
	<-ctx.Done()
	fmt.Fprintln(out, "\nStopping…")
	return d.close()
}

// loginMain is the Weep-like client: `demo login [-url URL] [-no-open] [user]`.
func loginMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/demo login [-url URL] [-no-open] [user]\n\n"+
			"Logs in as Weep does: asks for a challenge, opens its link in the desktop's\n"+
			"browser (or prints it), waits for you to approve it there and calls\n"+
			"ConsoleMe with the token.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	base := fs.String("url", fmt.Sprintf("http://127.0.0.1:%d", defaultCaddyPort), "ConsoleMe's URL (Weep's consoleme_url): the demo's Caddy")
	noOpen := fs.Bool("no-open", false, "only print the challenge URL; by default it is also opened in the desktop's browser (xdg-open, or open on macOS) when there is one")
	users, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	user := defaultConfig().User
	switch len(users) {
	case 0:
	case 1:
		user = users[0]
	default:
		return fmt.Errorf("give at most one user, got %q (see -h)", users)
	}
	c := weepClient{
		BaseURL:   strings.TrimSuffix(*base, "/"),
		PollEvery: 3 * time.Second,
		Timeout:   2 * time.Minute,
		Out:       out,
		// "This wasn't me" in the browser ends the wait at once.
		StopWhenCancelled: true,
	}
	if !*noOpen {
		c.Open, c.OpenWith = browserOpener()
	}
	_, err = c.Login(ctx, user)
	return err
}

// parseInterspersed parses args with fs, flags before and after the other
// arguments alike (`login alice@example.com -no-open` as well as
// `login -no-open alice@example.com`), and returns the other arguments.
// "--" ends the flags, as in the flag package.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		// The flag package stops at the first non-flag, or after "--".
		if len(args) > 0 && len(args)-fs.NArg() > 0 && args[len(args)-fs.NArg()-1] == "--" {
			return append(rest, fs.Args()...), nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
