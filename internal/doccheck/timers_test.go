package doccheck

import (
	"go/ast"
	"go/token"
	"strconv"
	"testing"
)

// TestNoTimerMadeDue fails for a timer made or reset with a constant
// duration <= 0 (time.NewTimer(0), time.After(0), time.AfterFunc(0, f),
// t.Reset(0)): in a synctest bubble such a timer is run by the goroutine
// that makes it or waits on it, which the race detector does not survive
// (internal/racerepro). Act first, then wait a positive duration.
func TestNoTimerMadeDue(t *testing.T) {
	walkModule(t, true, func(fset *token.FileSet, f *ast.File) {
		if f.Name.Name == "racerepro" {
			return // the reproducer makes them on purpose
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, _ := sel.X.(*ast.Ident)
			isTime := pkg != nil && pkg.Name == "time"
			switch name := sel.Sel.Name; {
			case isTime && (name == "NewTimer" || name == "After" || name == "AfterFunc"),
				name == "Reset" && len(call.Args) == 1:
				if notPositive(call.Args[0]) {
					t.Errorf("%s: %s with a duration <= 0 makes a timer already due", fset.Position(call.Pos()), name)
				}
			}
			return true
		})
	})
}

// notPositive reports whether e is a literal 0 or a negated literal.
func notPositive(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return notPositive(e.X)
	case *ast.UnaryExpr:
		_, lit := e.X.(*ast.BasicLit)
		return e.Op == token.SUB && lit
	case *ast.BasicLit:
		v, err := strconv.ParseFloat(e.Value, 64)
		return (e.Kind == token.INT || e.Kind == token.FLOAT) && err == nil && v == 0
	}
	return false
}
