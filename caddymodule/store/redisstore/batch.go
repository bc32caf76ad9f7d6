package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds how many calls share one pipeline.
const maxBatch = 64

// batcher sends concurrent calls of one script to Redis together, in one
// pipeline (group commit). Each call still costs a single round trip and
// stays atomic on the server (one script run); under load many calls share
// the round trip's system calls instead of paying for their own.
type batcher struct {
	rdb     redis.UniversalClient
	script  *redis.Script
	timeout time.Duration
	calls   chan *batchCall
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

type batchCall struct {
	key  string
	args []any
	done chan batchResult
}

type batchResult struct {
	n   int64
	err error
}

// newBatcher starts workers pipelines that may be in flight at once; a
// batch is whatever calls are waiting when a worker is free, so a lone call
// is sent at once.
func newBatcher(rdb redis.UniversalClient, script *redis.Script, workers int, timeout time.Duration) *batcher {
	b := &batcher{rdb: rdb, script: script, timeout: timeout,
		calls: make(chan *batchCall), stop: make(chan struct{})}
	for range workers {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// run runs the script for key with args and returns its integer reply.
func (b *batcher) run(ctx context.Context, key string, args []any) (int64, error) {
	call := &batchCall{key: key, args: args, done: make(chan batchResult, 1)}
	select {
	case b.calls <- call:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-b.stop:
		return 0, redis.ErrClosed
	}
	select {
	case r := <-call.done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *batcher) loop() {
	defer b.wg.Done()
	calls := make([]*batchCall, 0, maxBatch)
	for {
		calls = calls[:0]
		select {
		case c := <-b.calls:
			calls = append(calls, c)
		case <-b.stop:
			return
		}
	more:
		for len(calls) < maxBatch {
			select {
			case c := <-b.calls:
				calls = append(calls, c)
			default:
				break more
			}
		}
		b.send(calls)
	}
}

// send runs one pipeline. A script the server does not know yet (after a
// restart) is loaded by running those calls again one by one.
func (b *batcher) send(calls []*batchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = b.script.EvalSha(ctx, pipe, []string{c.key}, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range calls {
		n, err := cmds[i].Int64()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			n, err = b.script.Run(ctx, b.rdb, []string{c.key}, c.args...).Int64()
		}
		c.done <- batchResult{n: n, err: err}
	}
}

// close stops the workers once their pipelines are done.
func (b *batcher) close() {
	b.stopped.Do(func() { close(b.stop) })
	b.wg.Wait()
}
