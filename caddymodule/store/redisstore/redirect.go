package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// A cluster node answers a call for a key it does not serve with MOVED (the
// slot is another master's now) or, while the slot is being moved, with ASK
// (the key has gone to the master importing the slot: ask it, this once,
// prefixed with ASKING). Either way the node ran nothing, so the store
// sends the call once to the node named, as a redirected call, and no
// further: a call that gets no answer is never sent again (it may have
// run), and one redirected twice fails. go-redis's own redirections are off
// (MaxRedirects), as they come with resending calls that timed out.
//
// nodes are the cluster client's clients of each node, by address, so that
// a redirection reuses their connections; the node named is always among
// them (go-redis makes the client of a node named in a redirection before
// answering it).
type nodes struct{ m sync.Map }

// track has n learn every node client cc makes.
func (n *nodes) track(cc *redis.ClusterClient) {
	cc.OnNewNode(func(c *redis.Client) { n.m.Store(c.Options().Addr, c) })
}

// redirected returns the node err redirects to, and whether it asks (ASK)
// rather than moves (MOVED); nil when err is no redirection, or names a node
// the cluster client does not know.
func (n *nodes) redirected(err error) (node *redis.Client, ask bool) {
	if n == nil || err == nil {
		return nil, false
	}
	addr, moved := redis.IsMovedError(err)
	if !moved {
		if addr, ask = redis.IsAskError(err); !ask {
			return nil, false
		}
	}
	if c, ok := n.m.Load(addr); ok {
		return c.(*redis.Client), ask
	}
	return nil, false
}

// sender is a client or a connection of one.
type sender interface {
	Process(ctx context.Context, cmd redis.Cmder) error
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// resend sends cmd to node (a client or a connection of one), after ASKING
// when ask.
func resend(ctx context.Context, node sender, ask bool, cmd redis.Cmder) error {
	cmd.SetErr(nil)
	if !ask {
		return node.Process(ctx, cmd)
	}
	_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		_ = p.Process(ctx, redis.NewCmd(ctx, "asking"))
		return p.Process(ctx, cmd)
	})
	return cmd.Err()
}

// follow sends cmd, which err answered, once more to the node err redirects
// to, if it is a redirection; else it returns err.
func (n *nodes) follow(ctx context.Context, cmd redis.Cmder, err error) error {
	node, ask := n.redirected(err)
	if node == nil {
		return err
	}
	return resend(ctx, node, ask, cmd)
}

// followHook follows the redirections of the calls made through a cluster
// client (see nodes); pinned connections follow theirs themselves.
type followHook struct{ n *nodes }

func (h followHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h followHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return h.n.follow(ctx, cmd, next(ctx, cmd))
	}
}

func (h followHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if next(ctx, cmds) == nil {
			return nil
		}
		var first error
		for _, cmd := range cmds {
			if err := h.n.follow(ctx, cmd, cmd.Err()); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// pinned is a connection to the master holding one key, for a script and
// the WAIT after it (see pollAcked), that follows one redirection of the
// scripts run on it: from then on it is a connection to the node named, and
// after an ASK each script is prefixed with ASKING.
type pinned struct {
	conn     *redis.Conn
	nodes    *nodes
	ask      bool
	followed bool
}

// run runs script on the connection, following one redirection.
func (p *pinned) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := p.eval(ctx, script, keys, args)
	if p.followed {
		return cmd
	}
	node, ask := p.nodes.redirected(cmd.Err())
	if node == nil {
		return cmd
	}
	p.followed = true
	_ = p.conn.Close()
	p.conn, p.ask = node.Conn(), ask
	return p.eval(ctx, script, keys, args)
}

// eval runs script by its digest, and by its text when the server does not
// know it yet, after ASKING when the key is asked for.
func (p *pinned) eval(ctx context.Context, script *redis.Script, keys []string, args []any) *redis.Cmd {
	if !p.ask {
		return script.Run(ctx, p.conn, keys, args...)
	}
	cmd := evalSha(ctx, script, keys, args)
	if err := resend(ctx, p.conn, true, cmd); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := script.Load(ctx, p.conn).Err(); err != nil {
			cmd.SetErr(err)
			return cmd
		}
		cmd = evalSha(ctx, script, keys, args)
		_ = resend(ctx, p.conn, true, cmd)
	}
	return cmd
}

// close releases the connection.
func (p *pinned) close() { _ = p.conn.Close() }

// evalSha is the command that runs script by its digest.
func evalSha(ctx context.Context, script *redis.Script, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, "evalsha", script.Hash(), len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return redis.NewCmd(ctx, append(a, args...)...)
}
