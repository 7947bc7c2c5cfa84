package doccheck

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"testing"
	"time"
)

// TestNoTimerMadeDue fails for a timer made or reset with a duration that
// is a constant <= 0 (time.NewTimer(0), time.After(-time.Second),
// time.AfterFunc(none, f) with const none = 0, t.Reset(0*time.Second)): in
// a synctest bubble such a timer is run by the goroutine that makes it or
// waits on it, which the race detector does not survive
// (internal/racerepro). Act first, then wait a positive duration. The
// constants it can evaluate are literals, time's units, conversions to
// time.Duration, arithmetic on them, and the constants the same file
// declares; any method named Reset counts as a timer's.
func TestNoTimerMadeDue(t *testing.T) {
	walkModule(t, true, func(fset *token.FileSet, f *ast.File) {
		if f.Name.Name == "racerepro" {
			return // the reproducer makes them on purpose
		}
		consts := fileConsts(f)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch name := sel.Sel.Name; {
			case isTime(sel.X) && (name == "NewTimer" || name == "After" || name == "AfterFunc"),
				name == "Reset" && len(call.Args) == 1:
				if v, ok := evalConst(call.Args[0], consts); ok && constant.Sign(v) <= 0 {
					t.Errorf("%s: %s with a duration <= 0 makes a timer already due", fset.Position(call.Pos()), name)
				}
			}
			return true
		})
	})
}

func TestEvalConst(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nconst none = 0\n", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		expr string
		sign int
		ok   bool
	}{
		{"0", 0, true},
		{"-time.Second", -1, true},
		{"0 * time.Second", 0, true},
		{"20 * time.Millisecond", 1, true},
		{"time.Duration(0)", 0, true},
		{"none", 0, true},
		{"d", 0, false},
		{"time.Until(t)", 0, false},
	} {
		e, err := parser.ParseExpr(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := evalConst(e, fileConsts(f))
		if ok != c.ok || ok && constant.Sign(v) != c.sign {
			t.Errorf("%s: %v %v, want sign %d, %v", c.expr, v, ok, c.sign, c.ok)
		}
	}
}

func isTime(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "time"
}

// fileConsts maps the names of the constants f declares, anywhere in it,
// to their expressions (scopes are ignored: a duration's name is rarely
// reused).
func fileConsts(f *ast.File) map[string]ast.Expr {
	m := map[string]ast.Expr{}
	ast.Inspect(f, func(n ast.Node) bool {
		if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
			for _, s := range d.Specs {
				vs := s.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						m[id.Name] = vs.Values[i]
					}
				}
			}
		}
		return true
	})
	return m
}

var timeUnits = map[string]time.Duration{
	"Nanosecond": time.Nanosecond, "Microsecond": time.Microsecond, "Millisecond": time.Millisecond,
	"Second": time.Second, "Minute": time.Minute, "Hour": time.Hour,
}

// evalConst evaluates e if it is a constant this test understands.
func evalConst(e ast.Expr, consts map[string]ast.Expr) (constant.Value, bool) {
	return evalDepth(e, consts, 0)
}

func evalDepth(e ast.Expr, consts map[string]ast.Expr, depth int) (constant.Value, bool) {
	if depth > 16 {
		return nil, false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.INT && e.Kind != token.FLOAT {
			return nil, false
		}
		v := constant.MakeFromLiteral(e.Value, e.Kind, 0)
		return v, v.Kind() != constant.Unknown
	case *ast.ParenExpr:
		return evalDepth(e.X, consts, depth+1)
	case *ast.UnaryExpr:
		x, ok := evalDepth(e.X, consts, depth+1)
		if !ok || (e.Op != token.SUB && e.Op != token.ADD) {
			return nil, false
		}
		return constant.UnaryOp(e.Op, x, 0), true
	case *ast.BinaryExpr:
		x, okx := evalDepth(e.X, consts, depth+1)
		y, oky := evalDepth(e.Y, consts, depth+1)
		switch {
		case !okx || !oky:
			return nil, false
		case e.Op == token.ADD || e.Op == token.SUB || e.Op == token.MUL:
			return constant.BinaryOp(x, e.Op, y), true
		case e.Op == token.QUO && constant.Sign(y) != 0:
			return constant.BinaryOp(constant.ToFloat(x), token.QUO, constant.ToFloat(y)), true
		}
		return nil, false
	case *ast.SelectorExpr:
		if d, ok := timeUnits[e.Sel.Name]; ok && isTime(e.X) {
			return constant.MakeInt64(int64(d)), true
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && isTime(sel.X) && sel.Sel.Name == "Duration" && len(e.Args) == 1 {
			return evalDepth(e.Args[0], consts, depth+1)
		}
	case *ast.Ident:
		if x, ok := consts[e.Name]; ok {
			return evalDepth(x, consts, depth+1)
		}
	}
	return nil, false
}
