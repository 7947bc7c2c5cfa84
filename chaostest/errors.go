package chaostest

import "errors"

// ErrInvalidOption is matched (errors.Is) by the error an invalid option
// value gives; the error says which option and why.
var ErrInvalidOption = errors.New("chaostest: invalid option")

// ErrInvalidTest is matched by the error a Test without a Start function
// gives.
var ErrInvalidTest = errors.New("chaostest: invalid test")
