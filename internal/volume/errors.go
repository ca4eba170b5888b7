package volume

// classified keeps an error's message and adds the class the API maps to
// a status code (image.ErrNotFound, image.ErrInvalid, image.ErrConflict).
type classified struct {
	class error
	err   error
}

func (e *classified) Error() string        { return e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.class }

func classify(class, err error) error { return &classified{class: class, err: err} }
