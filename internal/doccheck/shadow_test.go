package doccheck

import (
	"go/ast"
	"go/token"
	"go/types"
	"testing"
)

// No variable, parameter, result or function in the module, tests
// included, takes the name of a predeclared identifier (any, max, min,
// len, new, close, ...): a reader who sees max(a, b) or x.(any) should not
// have to check which one is meant.
func TestNoNameShadowsAPredeclaredOne(t *testing.T) {
	walkModule(t, true, func(fset *token.FileSet, f *ast.File) {
		check := func(id *ast.Ident) {
			if id != nil && id.Name != "_" && types.Universe.Lookup(id.Name) != nil {
				t.Errorf("%s: %q shadows the predeclared identifier", fset.Position(id.Pos()), id.Name)
			}
		}
		fields := func(fl *ast.FieldList) {
			if fl == nil {
				return
			}
			for _, f := range fl.List {
				for _, n := range f.Names {
					check(n)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Recv == nil {
					check(n.Name)
				}
			case *ast.FuncType:
				fields(n.Params)
				fields(n.Results)
			case *ast.ValueSpec:
				for _, id := range n.Names {
					check(id)
				}
			case *ast.TypeSpec:
				check(n.Name)
			case *ast.AssignStmt:
				if n.Tok == token.DEFINE {
					for _, e := range n.Lhs {
						if id, ok := e.(*ast.Ident); ok {
							check(id)
						}
					}
				}
			case *ast.RangeStmt:
				if n.Tok == token.DEFINE {
					for _, e := range []ast.Expr{n.Key, n.Value} {
						if id, ok := e.(*ast.Ident); ok {
							check(id)
						}
					}
				}
			}
			return true
		})
	})
}
