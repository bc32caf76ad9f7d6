package consolemeauth

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The argument readers of the Caddyfile parser: each reads the arguments
// of the current subdirective and names it in its errors.

// unmarshalRateLimit parses `<events> <window>` or `off`.
func unmarshalRateLimit(d *caddyfile.Dispenser) (*RateLimit, error) {
	name := d.Val()
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "off":
		return &RateLimit{}, nil
	case len(args) != 2:
		return nil, d.Errf("%s: want <events> <window> or off", name)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return nil, d.Errf("%s: %q is not a positive number of events", name, args[0])
	}
	win, err := caddy.ParseDuration(args[1])
	if err != nil || win <= 0 {
		return nil, d.Errf("%s: %q is not a positive duration", name, args[1])
	}
	return &RateLimit{Events: n, Window: caddy.Duration(win)}, nil
}

// oneString reads exactly one argument of the current subdirective.
func oneString(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing value", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: too many arguments", name)
	}
	return nil
}

// oneInt reads one integer argument between lo and hi.
func oneInt(d *caddyfile.Dispenser, dst *int, lo, hi int) error {
	name := d.Val()
	var s string
	if err := oneString(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		if hi == 1<<31-1 {
			return d.Errf("%s: %q is not a positive integer", name, s)
		}
		return d.Errf("%s: %q is not an integer from %d to %d", name, s, lo, hi)
	}
	*dst = n
	return nil
}

// oneDuration reads one positive duration argument.
func oneDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneString(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	if dur <= 0 {
		return d.Errf("%s: must be positive, got %s", name, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// someArgs reads one or more arguments.
func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("%s: missing value", name)
	}
	return args, nil
}

// noArgs refuses arguments after a flag subdirective.
func noArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}
