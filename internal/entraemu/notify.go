package entraemu

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Delivery of change and lifecycle notifications (protocol §7): per
// subscription and URL one queue, batched (up to notifyBatchMax values per
// POST after a short window), delivered in order by a bounded pool of
// workers over one keep-alive client, retried with exponential back-off
// and dropped after NotificationRetryFor. Directory mutations only append
// to a queue; they never wait for the network.

const (
	notifyWorkers        = 64
	notifyBatchMax       = 100
	notifyTimeout        = 3 * time.Second // the receiver must answer 2xx within 3 s
	defaultBatchWindow   = 100 * time.Millisecond
	defaultRetryBase     = 30 * time.Second
	defaultRetryFor      = 4 * time.Hour
	defaultValidationTTL = 10 * time.Second
)

// subQueue holds the undelivered notification values of one subscription
// for one URL (changes or lifecycle), oldest first.
type subQueue struct {
	sub       *subscription
	lifecycle bool
	pending   [][]byte
	enqueued  []time.Time // real time each pending value was queued
	busy      bool        // scheduled, ready or in flight
	attempt   int         // consecutive failed attempts
	timer     *time.Timer

	delivered, failed, dropped int
}

func (q *subQueue) url() string {
	if q.lifecycle {
		return q.sub.lifecycleURL
	}
	return q.sub.notificationURL
}

// notifier is the delivery state of an Emulator, guarded by e.subMu.
type notifier struct {
	cond      *sync.Cond
	client    *http.Client
	transport *http.Transport
	roots     *x509.CertPool
	ctx       context.Context
	cancel    context.CancelFunc
	ready     []*subQueue
	timers    map[*subQueue]struct{}
	started   bool
	closed    bool
	wg        sync.WaitGroup

	batchWindow, retryBase, retryFor, validationTimeout time.Duration
}

func (n *notifier) init(mu *sync.Mutex, cfg Config) {
	n.cond = sync.NewCond(mu)
	n.timers = map[*subQueue]struct{}{}
	n.batchWindow = orDefault(cfg.NotificationBatchWindow, defaultBatchWindow)
	n.retryBase = orDefault(cfg.NotificationRetryBase, defaultRetryBase)
	n.retryFor = orDefault(cfg.NotificationRetryFor, defaultRetryFor)
	n.validationTimeout = orDefault(cfg.SubscriptionValidationTimeout, defaultValidationTTL)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.transport = &http.Transport{
		Proxy: nil, ForceAttemptHTTP2: false, MaxIdleConns: 4 * notifyWorkers, MaxIdleConnsPerHost: notifyWorkers,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 5 * time.Second,
	}
	n.client = &http.Client{Transport: n.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n.setRoots(nil)
}

// setRoots trusts the system roots plus ca (the emulator's own CA, so
// receivers behind it validate) for https notification URLs.
func (n *notifier) setRoots(ca *x509.Certificate) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if ca != nil {
		pool.AddCert(ca)
	}
	n.roots = pool
	n.transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// enqueueLocked appends one notification value (a JSON object) to q and
// schedules delivery after the batch window. The caller holds e.subMu.
func (e *Emulator) enqueueLocked(q *subQueue, v []byte) {
	n := &e.notify
	if n.closed {
		return
	}
	q.pending = append(q.pending, v)
	q.enqueued = append(q.enqueued, time.Now())
	if !q.busy {
		q.busy = true
		e.scheduleLocked(q, n.batchWindow)
	}
}

// scheduleLocked makes q ready after d (real time), starting the workers
// on first use.
func (e *Emulator) scheduleLocked(q *subQueue, d time.Duration) {
	n := &e.notify
	if !n.started {
		n.started = true
		n.wg.Add(notifyWorkers)
		for range notifyWorkers {
			go e.deliverLoop()
		}
	}
	n.timers[q] = struct{}{}
	q.timer = time.AfterFunc(d, func() {
		e.subMu.Lock()
		defer e.subMu.Unlock()
		delete(n.timers, q)
		if !n.closed {
			n.ready = append(n.ready, q)
			n.cond.Signal()
		}
	})
}

func (e *Emulator) deliverLoop() {
	n := &e.notify
	defer n.wg.Done()
	e.subMu.Lock()
	defer e.subMu.Unlock()
	for {
		for len(n.ready) == 0 && !n.closed {
			n.cond.Wait()
		}
		if n.closed {
			return
		}
		q := n.ready[0]
		n.ready[0] = nil
		n.ready = n.ready[1:]
		if q.sub.removed || !e.now().Before(q.sub.expires) {
			e.dropLocked(q, len(q.pending)) // an expired or deleted subscription stops delivering
			q.busy = false
			continue
		}
		k := min(len(q.pending), notifyBatchMax)
		body := batchBody(q.pending[:k])
		target := q.url()
		e.subMu.Unlock()
		ok := e.post(target, body)
		e.subMu.Lock()
		if ok {
			q.pending, q.enqueued = q.pending[k:], q.enqueued[k:]
			q.delivered += k
			q.attempt = 0
			e.count(q.sub.tid, func(c *Counters) { c.NotificationsDelivered += k })
		} else {
			q.failed += k
			q.attempt++
			e.count(q.sub.tid, func(c *Counters) { c.NotificationsFailed += k })
			// Values retried for longer than NotificationRetryFor are
			// dropped (Graph: up to 4 hours, protocol §7).
			old := 0
			for old < len(q.enqueued) && time.Since(q.enqueued[old]) >= n.retryFor {
				old++
			}
			e.dropLocked(q, old)
		}
		switch {
		case n.closed:
			return
		case len(q.pending) == 0:
			q.busy = false
		case ok:
			n.ready = append(n.ready, q)
		default:
			e.scheduleLocked(q, backoff(n.retryBase, q.attempt))
		}
	}
}

// dropLocked discards the k oldest pending values of q.
func (e *Emulator) dropLocked(q *subQueue, k int) {
	if k == 0 {
		return
	}
	q.pending, q.enqueued = q.pending[k:], q.enqueued[k:]
	q.dropped += k
	q.attempt = 0
	e.count(q.sub.tid, func(c *Counters) { c.NotificationsDropped += k })
}

// backoff is base·2^(attempt−1), at most one hour.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

func batchBody(values [][]byte) []byte {
	size := 16
	for _, v := range values {
		size += len(v) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"value":[`...)
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v...)
	}
	return append(b, "]}"...)
}

// post delivers one batch; true means a 2xx answer within notifyTimeout.
func (e *Emulator) post(target string, body []byte) bool {
	ctx, cancel := context.WithTimeout(e.notify.ctx, notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := e.notify.client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without the URL
		}
		e.log.Debug("notification delivery failed", "error", err)
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// Close stops notification delivery (pending notifications are discarded)
// and closes idle receiver connections. Server.Close calls it; an Emulator
// from New that created subscriptions must be closed too.
func (e *Emulator) Close() {
	n := &e.notify
	e.subMu.Lock()
	if n.closed {
		e.subMu.Unlock()
		return
	}
	n.closed = true
	for q := range n.timers {
		q.timer.Stop()
	}
	n.timers = nil
	n.cancel()
	n.cond.Broadcast()
	e.subMu.Unlock()
	n.wg.Wait()
	n.transport.CloseIdleConnections()
}
