package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassKeepsMessageThroughWrapping(t *testing.T) {
	err := fmt.Errorf("pull: %w", NotFoundf("No such image: %s", "x:1"))
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("class lost: %v", err)
	}
	if err.Error() != "pull: No such image: x:1" {
		t.Errorf("message %q", err)
	}
	if Classify(ErrInvalid, nil) != nil {
		t.Error("nil classified into an error")
	}
}
