package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestWays holds the code to the ways docs/development.md follows through
// the files ("The ways through the files"): along a way, a file calls only
// files at or after its own place, so that following one packet, one report
// or one scrape never returns to a file already left.
//
// The rules, as the check applies them:
//   - A way is the indented block after a line that names it ("A packet's
//     way ..."). A file is on the way if the block's first column names it
//     (a line indented four spaces, up to the first gap of two spaces,
//     holds only file names); a line may name two files, which then share
//     a place. A file named only in a description is not on that way.
//   - A way names a file once: naming it again would be the way itself
//     returning to it.
//   - An edge is a use, in one file, of a function or method declared in
//     another (a call, or a function value handed on). A call through an
//     interface is not followed: which method runs is known only at run
//     time, and the interface is a type.
//   - An edge between two files of a way that goes to an earlier place is
//     a back-edge, and fails the test. Files not on a way are outside it.
//   - The block after "Shared by the ways" names the files every way may
//     call (the vocabulary, and helpers such as fold.go): none of them may
//     be on a way, or call a file that is on one.
//
// The package is type-checked as it builds for the machine's GOOS, with the
// imports' export data from go list -export.
func TestWays(t *testing.T) {
	doc, err := os.ReadFile("docs/development.md")
	if err != nil {
		t.Fatal(err)
	}
	ways, shared, err := parseWays(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"packet", "report", "scrape", "delta", "history", "page"} {
		if !slices.ContainsFunc(ways, func(w way) bool { return w.name == want }) {
			t.Errorf("docs/development.md has no %s's way", want)
		}
	}
	onWay := map[string]string{} // a file on a way -> the first way it is on
	for _, w := range append([]way{shared}, ways...) {
		for _, f := range w.order {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("the %s's way names %s: %v", w.name, f, err)
			}
			if w.name != shared.name {
				if _, ok := onWay[f]; !ok {
					onWay[f] = w.name
				}
			}
		}
		for _, f := range w.twice {
			t.Errorf("the %s's way names %s twice", w.name, f)
		}
	}
	for _, f := range shared.order {
		if name, ok := onWay[f]; ok {
			t.Errorf("%s is shared by the ways, and on the %s's way", f, name)
		}
	}
	edges, err := packageEdges()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		if _, ok := shared.place[e.from]; ok {
			if name, ok := onWay[e.to]; ok {
				t.Errorf("%s:%d (%s) calls %s's %s: %s is shared by the ways, and %s is on the %s's way",
					e.from, e.line, e.caller, e.to, e.callee, e.from, e.to, name)
			}
		}
	}
	for _, w := range ways {
		for _, e := range backEdges(w, edges) {
			t.Errorf("%s:%d (%s) calls %s's %s, a file earlier in the %s's way",
				e.from, e.line, e.caller, e.to, e.callee, w.name)
		}
	}
}

// A way is the files one unit of data passes through, in order.
type way struct {
	name  string
	place map[string]int // file -> its place; two files of one line share one
	order []string       // the files, in order
	twice []string       // files the way names more than once
}

var (
	wayHeading    = regexp.MustCompile(`^An? ([a-z]+)'s way\b`)
	sharedHeading = regexp.MustCompile(`^Shared by the ways\b`)
	goFile        = regexp.MustCompile(`[A-Za-z0-9_]+\.go\b`)
)

// parseWays reads the ways, and the files they share, from the section
// "The ways through the files" of docs/development.md.
func parseWays(doc string) (ways []way, shared way, err error) {
	_, section, ok := strings.Cut(doc, "\n## The ways through the files\n")
	if !ok {
		return nil, way{}, fmt.Errorf("docs/development.md has no section \"The ways through the files\"")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	shared = way{name: "shared", place: map[string]int{}}
	var cur *way
	inBlock := false // cur's block has begun: prose after it ends it
	s := bufio.NewScanner(strings.NewReader(section))
	for s.Scan() {
		line := s.Text()
		if m := wayHeading.FindStringSubmatch(line); m != nil {
			ways = append(ways, way{name: m[1], place: map[string]int{}})
			cur, inBlock = &ways[len(ways)-1], false
			continue
		}
		if sharedHeading.MatchString(line) {
			cur, inBlock = &shared, false
			continue
		}
		if !strings.HasPrefix(line, " ") {
			if strings.TrimSpace(line) != "" && inBlock {
				cur = nil
			}
			continue
		}
		if cur == nil {
			continue
		}
		inBlock = true
		if !strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "     ") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		if rest := strings.Trim(goFile.ReplaceAllString(first, ""), ", "); rest != "" {
			return nil, way{}, fmt.Errorf("the %s's way: %q: the first column names files, two spaces before what they do", cur.name, line)
		}
		place := 0
		if len(cur.order) > 0 {
			place = cur.place[cur.order[len(cur.order)-1]] + 1
		}
		for _, f := range goFile.FindAllString(first, -1) {
			if _, seen := cur.place[f]; seen {
				cur.twice = append(cur.twice, f)
				continue
			}
			cur.place[f] = place
			cur.order = append(cur.order, f)
		}
	}
	if len(ways) == 0 {
		return nil, way{}, fmt.Errorf("docs/development.md's \"The ways through the files\" names no way")
	}
	return ways, shared, nil
}

// An edge is one use, in file from, of a function declared in file to.
type edge struct {
	from, to       string
	line           int
	caller, callee string // "renderer.size", "humanBytes"
}

// backEdges returns the edges of w that go to an earlier place, by file and line.
func backEdges(w way, edges []edge) []edge {
	var back []edge
	for _, e := range edges {
		pf, okf := w.place[e.from]
		pt, okt := w.place[e.to]
		if okf && okt && pt < pf {
			back = append(back, e)
		}
	}
	return back
}

// packageEdges type-checks the package's non-test files and returns every
// use of a function or method in one file that is declared in another.
func packageEdges() ([]edge, error) {
	exports, err := exportData()
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(".", name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup)}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	pkg, err := conf.Check("main", fset, files, info)
	if err != nil {
		return nil, err
	}
	var edges []edge
	for _, f := range files {
		from := filepath.Base(fset.Position(f.Pos()).Filename)
		for _, decl := range f.Decls {
			caller := declName(decl)
			ast.Inspect(decl, func(n ast.Node) bool {
				id, ok := n.(*ast.Ident)
				if !ok {
					return true
				}
				fn, ok := info.Uses[id].(*types.Func)
				if !ok || fn.Pkg() != pkg {
					return true
				}
				fn = fn.Origin()
				if sig := fn.Signature(); sig.Recv() != nil && types.IsInterface(sig.Recv().Type()) {
					return true
				}
				to := filepath.Base(fset.Position(fn.Pos()).Filename)
				if to != from {
					edges = append(edges, edge{from: from, to: to, line: fset.Position(id.Pos()).Line,
						caller: caller, callee: funcName(fn)})
				}
				return true
			})
		}
	}
	return edges, nil
}

// exportData returns the export data file of each package the package
// imports, directly or not, from go list -export; the package itself is
// not built for it.
func exportData() (map[string]string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	list := func(args ...string) ([]string, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(goCmd, append([]string{"list"}, args...)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list: %v: %s", err, stderr.Bytes())
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
	}
	imports, err := list("-f", "{{join .Imports \"\\n\"}}", ".")
	if err != nil {
		return nil, err
	}
	lines, err := list(append([]string{"-deps", "-export", "-f", "{{.ImportPath}} {{.Export}}"}, imports...)...)
	if err != nil {
		return nil, err
	}
	exports := map[string]string{}
	for _, line := range lines {
		if path, file, ok := strings.Cut(line, " "); ok && file != "" {
			exports[path] = file
		}
	}
	return exports, nil
}

// declName names a top-level declaration as a message shows it:
// "renderer.size", "humanBytes", or a package-level var's first name.
func declName(decl ast.Decl) string {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil || len(d.Recv.List) == 0 {
			return d.Name.Name
		}
		return recvName(d.Recv.List[0].Type) + "." + d.Name.Name
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			if v, ok := spec.(*ast.ValueSpec); ok && len(v.Names) > 0 {
				return v.Names[0].Name
			}
		}
	}
	return "?"
}

// recvName is the name of a receiver's type, without * or type parameters.
func recvName(x ast.Expr) string {
	for {
		switch e := x.(type) {
		case *ast.StarExpr:
			x = e.X
		case *ast.IndexExpr:
			x = e.X
		case *ast.IndexListExpr:
			x = e.X
		case *ast.Ident:
			return e.Name
		default:
			return "?"
		}
	}
}

// funcName names a function as a message shows it: "renderer.size" for a
// method, the plain name for a function.
func funcName(fn *types.Func) string {
	recv := fn.Signature().Recv()
	if recv == nil {
		return fn.Name()
	}
	typ := recv.Type()
	if p, ok := typ.(*types.Pointer); ok {
		typ = p.Elem()
	}
	if n, ok := typ.(*types.Named); ok {
		return n.Obj().Name() + "." + fn.Name()
	}
	return fn.Name()
}
