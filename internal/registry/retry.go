package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Retry policy: three attempts, 200 ms then 400 ms apart. Only failures
// that another attempt can fix are retried: the network (a refused or cut
// connection), 5xx and 429. A 4xx is the registry's answer and stays one;
// a DNS name that does not exist or a certificate that does not verify
// will not change in 600 ms.
const (
	retryAttempts = 3
	retryDelay    = 200 * time.Millisecond
)

// withRetry runs fn until it succeeds, fails for good, or the attempts
// are spent; it returns fn's last error.
func (c *Client) withRetry(ctx context.Context, fn func() error) error {
	delay := retryDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == retryAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if err := c.sleep(ctx, delay); err != nil {
			return err
		}
		delay *= 2
	}
}

func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		// Classified already: only the kind that means "try again later".
		return e.Kind == ErrUnreachable && retryable(e.Err)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return statusKind(terr) == ErrUnreachable
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	if errors.Is(err, errPlainHTTPRefused) || errors.Is(err, errRedirectRefused) || isCertError(err) {
		return false
	}
	// TLS spoken to a plain HTTP server, or the reverse: the next attempt
	// meets the same server. net/http reports the first case only as text.
	var recErr tls.RecordHeaderError
	if errors.As(err, &recErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return false
	}
	return isNetworkError(err)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
