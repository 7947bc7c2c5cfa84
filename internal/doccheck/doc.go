// Package doccheck holds a test that every exported name in the module has
// a doc comment, so the public API stays documented.
package doccheck
