// Package doccheck holds tests that read the module's source: every
// exported name has a doc comment, so the public API stays documented; no
// predeclared name is shadowed; no timer is made already due (see
// internal/racerepro).
package doccheck
