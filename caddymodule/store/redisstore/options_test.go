package redisstore

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

func TestNewDoesNotConnect(t *testing.T) {
	const secret = "s3cr3t-pw"
	url := "redis://user:" + secret + "@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))) + "/0"
	start := time.Now()
	s, err := New(Options{URL: url})
	if err != nil {
		t.Fatalf("New with nothing listening: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if took := time.Since(start); took > time.Second {
		t.Errorf("New took %s", took)
	}
	for _, call := range []func() error{
		func() error { return s.Ping(t.Context()) },
		func() error { _, _, err := s.Poll(t.Context(), "t", "ip", true, time.Now()); return err },
	} {
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("call with nothing listening = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestNewBadOptions(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, opts := range []Options{
		{URL: "redis://user:" + secret + "@host:notaport/0"},
		{URL: "redis://user:" + secret + "@[::1/0"},
		{URL: "redis://user:" + secret + "%zz@host/0"},
		{URL: "redis://user:" + secret + "@host:6379/0?password=" + secret},
		{URL: "user:" + secret + "@host:6379"},
		{URL: "http://user:" + secret + "@host/0"},
		{URL: "redis://user:" + secret + "@host/notadb"},
		{URL: "redis://user:" + secret + "@host/0?bogus=1"},
		{URL: "redis://user:" + secret + "@host/0?dial_timeout=forever"},
		{URL: "unix://user:" + secret + "@"},
		{URL: "redis://host/0", Password: secret, InsecureSkipVerify: true},
		{URL: "redis://host/0", Password: secret, ReadTimeout: -time.Second},
		{URL: "redis://host/0", Password: secret, PoolSize: -1},
		{URL: "redis://host/0", Password: secret, MaxLoginsPerClient: -1},
		{URL: "redis://host/0", Password: secret, ReplicaAcks: -2},
		{URL: "redis://host/0", Password: secret, ReplicaAckTimeout: -time.Second},
		{URL: "redis://host/0", MasterName: "m", SentinelAddrs: []string{"h:26379"}, SentinelPassword: secret},
		{URL: "redis://host/0", ClusterAddrs: []string{"h:6379"}, Password: secret},
		{MasterName: "m", SentinelAddrs: []string{"h:26379"}, ClusterAddrs: []string{"h:6379"}, Password: secret},
		{MasterName: "m", Password: secret},
		{SentinelAddrs: []string{"h:26379"}, SentinelPassword: secret},
		{MasterName: "m", SentinelAddrs: []string{"h"}, SentinelPassword: secret},
		{ClusterAddrs: []string{"h:0"}, Password: secret},
		{ClusterAddrs: []string{"h:6379"}, Password: secret, InsecureSkipVerify: true},
		{SentinelPassword: secret},
		{KeyPrefix: "x{}:", Password: secret},
	} {
		s, err := New(opts)
		if err == nil {
			_ = s.Close()
			t.Errorf("New(%+v) succeeded", opts)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("New(%+v) error %q shows the password", opts, err)
		}
		t.Logf("%q: %v", opts.URL, err)
		if errors.Is(err, store.ErrUnavailable) {
			t.Errorf("New(%+v) error %q is ErrUnavailable, want a configuration error", opts, err)
		}
	}
}

// TestNewHAOptions: Sentinel and Cluster get the timeouts, credentials,
// no retries (nor redirects followed, in a cluster) and TLS of a single server, and construct without contacting
// anything.
func TestNewHAOptions(t *testing.T) {
	s := newStore(t, Options{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}, SentinelPassword: "sp",
		Password: "p", TLS: true, ReadTimeout: 3 * time.Second})
	o := s.rdb.(*redis.Client).Options()
	if o.Password != "p" || o.ReadTimeout != 3*time.Second || o.DialTimeout != DefaultDialTimeout ||
		o.MaxRetries != 0 || o.TLSConfig == nil || !o.ContextTimeoutEnabled {
		t.Errorf("sentinel options %+v", o)
	}
	c := newStore(t, Options{ClusterAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Username: "u", Password: "p"})
	co := c.rdb.(*redis.ClusterClient).Options()
	if len(co.Addrs) != 2 || co.Username != "u" || co.Password != "p" || co.WriteTimeout != DefaultWriteTimeout ||
		co.MaxRetries != -1 || co.MaxRedirects != 0 || co.TLSConfig != nil {
		t.Errorf("cluster options %+v", co)
	}
	if c.ackTimeout != DefaultReplicaAckTimeout || c.acks != 0 {
		t.Errorf("ack timeout %s, acks %d; want the defaults", c.ackTimeout, c.acks)
	}
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		opts  Options
		check func(*redis.Options) error
	}{
		{Options{}, func(o *redis.Options) error {
			if o.Addr != "127.0.0.1:6379" || o.DialTimeout != DefaultDialTimeout ||
				o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout ||
				o.MaxRetries != 0 || o.TLSConfig != nil || !o.ContextTimeoutEnabled {
				return errors.New("defaults not applied")
			}
			return nil
		}},
		{Options{URL: "redis://u:p@h:1/2?read_timeout=3s&max_retries=2", Username: "v", Password: "q", WriteTimeout: 5 * time.Second}, func(o *redis.Options) error {
			if o.Username != "v" || o.Password != "q" || o.DB != 2 || o.ReadTimeout != 3*time.Second ||
				o.WriteTimeout != 5*time.Second || o.MaxRetries != 2 {
				return errors.New("URL and overrides not combined")
			}
			return nil
		}},
		{Options{URL: "redis://us%40er:p@ss/w?rd#x%25@host:6380/2"}, func(o *redis.Options) error {
			if o.Username != "us@er" || o.Password != "p@ss/w?rd#x%" || o.Addr != "host:6380" || o.DB != 2 {
				return errors.New("user info not taken out")
			}
			return nil
		}},
		{Options{URL: "unix://:pw@/run/redis.sock"}, func(o *redis.Options) error {
			if o.Username != "" || o.Password != "pw" || o.Addr != "/run/redis.sock" {
				return errors.New("user info not taken out")
			}
			return nil
		}},
		{Options{URL: "rediss://cache.example.com:6380", InsecureSkipVerify: true}, func(o *redis.Options) error {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || !o.TLSConfig.InsecureSkipVerify {
				return errors.New("TLS not set up")
			}
			return nil
		}},
		{Options{URL: "redis://cache.example.com:6380", TLS: true}, func(o *redis.Options) error {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || o.TLSConfig.InsecureSkipVerify {
				return errors.New("TLS not set up")
			}
			return nil
		}},
		{Options{URL: "unix:///run/redis.sock?db=3", PoolSize: 7}, func(o *redis.Options) error {
			if o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 3 || o.PoolSize != 7 {
				return errors.New("unix socket not set up")
			}
			return nil
		}},
	} {
		s := newStore(t, tc.opts)
		o := s.rdb.(*redis.Client).Options()
		if err := tc.check(o); err != nil {
			t.Errorf("New(%+v): %v: %+v", tc.opts, err, o)
		}
	}
	s := newStore(t, Options{})
	if s.keys.prefix != DefaultKeyPrefix || s.grace != DefaultExpiredGrace || s.perClient != 0 {
		t.Errorf("prefix %q grace %s logins per client %d, want the defaults", s.keys.prefix, s.grace, s.perClient)
	}
	if s := newStore(t, Options{ExpiredGrace: -1}); s.grace != 0 {
		t.Errorf("negative grace gave %s, want 0", s.grace)
	}
}
