package consolemeauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The blocks of the consoleme_auth directive: "" is the directive's own
// block. parserFuncs names the function that parses each one's
// subdirectives.
var parserFuncs = map[string]string{
	"":            "UnmarshalCaddyfile",
	"saml":        "unmarshalSAML",
	"oidc":        "unmarshalOIDC",
	"web_login":   "unmarshalWebLogin",
	"mtls":        "unmarshalMTLS",
	"store redis": "unmarshalRedis",
}

// TestReferenceListsEverySubdirective keeps three lists together: the
// subdirectives the parser accepts, the tables of docs/reference.md and the
// syntax in UnmarshalCaddyfile's doc comment. A subdirective added to the
// parser must be documented in both, and neither may list one the parser
// does not accept.
func TestReferenceListsEverySubdirective(t *testing.T) {
	accepted := parserSubdirectives(t)
	for block, names := range accepted {
		if len(names) == 0 {
			t.Fatalf("found no subdirectives in %s: has the parser changed shape?", parserFuncs[block])
		}
		// The source reading above is checked against the parser itself.
		for _, name := range names {
			if probeSubdirective(block, name) {
				t.Errorf("%s: the parser refuses %q as unrecognized, though %s has a case for it", blockName(block), name, parserFuncs[block])
			}
		}
		if !probeSubdirective(block, "no_such_subdirective") {
			t.Errorf("%s: the parser accepts any name; the probe proves nothing", blockName(block))
		}
	}

	doc, err := os.ReadFile(filepath.Join("..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	compareLists(t, "docs/reference.md", accepted, referenceSubdirectives(t, string(doc)))
	compareLists(t, "the syntax in UnmarshalCaddyfile's doc comment", accepted, syntaxSubdirectives(t))
}

func blockName(block string) string {
	if block == "" {
		return "consoleme_auth"
	}
	return "consoleme_auth > " + block
}

// compareLists reports every subdirective the parser accepts that a list
// lacks, and every one a list has that the parser does not accept.
func compareLists(t *testing.T, where string, accepted, listed map[string][]string) {
	t.Helper()
	for block := range parserFuncs {
		for _, name := range accepted[block] {
			if !slices.Contains(listed[block], name) {
				t.Errorf("%s does not list %s's subdirective %q", where, blockName(block), name)
			}
		}
	}
	for block, names := range listed {
		if _, ok := parserFuncs[block]; !ok {
			t.Errorf("%s lists a block %q the parser does not have", where, block)
			continue
		}
		for _, name := range names {
			if !slices.Contains(accepted[block], name) {
				t.Errorf("%s lists %q under %s, which the parser does not accept", where, name, blockName(block))
			}
		}
	}
}

// probeSubdirective reports whether the parser refuses name in block as an
// unrecognized subdirective (and not for its arguments).
func probeSubdirective(block, name string) bool {
	var src string
	switch block {
	case "":
		src = "consoleme_auth {\n" + name + "\n}"
	case "store redis":
		src = "consoleme_auth {\nstore redis {\n" + name + "\n}\n}"
	default:
		src = "consoleme_auth {\n" + block + " {\n" + name + "\n}\n}"
	}
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src))
	return err != nil && strings.Contains(err.Error(), "unrecognized")
}

// parserSubdirectives reads the case labels of the switch in each block's
// parsing loop (`for ... d.NextBlock(...) { switch ... }`) from the
// package's source.
func parserSubdirectives(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	byFunc := map[string]string{}
	for block, fn := range parserFuncs {
		byFunc[fn] = block
	}
	out := map[string][]string{}
	for _, pkg := range pkgs {
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				block, ok := byFunc[fn.Name.Name]
				if !ok {
					continue
				}
				out[block] = append(out[block], blockLoopCases(fn.Body)...)
			}
		}
	}
	for block := range out {
		sort.Strings(out[block])
	}
	return out
}

// blockLoopCases returns the string case labels of the first switch in the
// body of the loop whose condition calls NextBlock.
func blockLoopCases(body *ast.BlockStmt) []string {
	var cases []string
	ast.Inspect(body, func(n ast.Node) bool {
		loop, ok := n.(*ast.ForStmt)
		if !ok || cases != nil || !callsNextBlock(loop.Cond) {
			return cases == nil
		}
		for _, stmt := range loop.Body.List {
			sw, ok := stmt.(*ast.SwitchStmt)
			if !ok {
				continue
			}
			for _, c := range sw.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						cases = append(cases, s)
					}
				}
			}
			break
		}
		return false
	})
	return cases
}

func callsNextBlock(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "NextBlock"
}

var (
	referenceBlock = regexp.MustCompile("^### The `([a-z_ ]+)` block$")
	tableName      = regexp.MustCompile("`([a-z0-9_]+)`")
)

// referenceSubdirectives reads the subdirective tables of docs/reference.md:
// the first table after "## Caddyfile" is the directive's own block, the
// first after each "### The `<block>` block" heading that block's. A row's
// first cell names one or more subdirectives, each in backquotes.
func referenceSubdirectives(t *testing.T, doc string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	block, inBlock, inTable, done := "", false, false, map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case line == "## Caddyfile":
			block, inBlock = "", true
		case strings.HasPrefix(line, "## "):
			inBlock = false
		case referenceBlock.MatchString(line):
			block, inBlock = referenceBlock.FindStringSubmatch(line)[1], true
		}
		if !inBlock || done[block] {
			continue
		}
		if strings.HasPrefix(line, "| subdirective |") {
			inTable = true
			continue
		}
		if !inTable {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inTable, done[block] = false, true
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.HasPrefix(cells[1], "---") {
			continue
		}
		for _, m := range tableName.FindAllStringSubmatch(cells[1], -1) {
			out[block] = append(out[block], m[1])
		}
	}
	if len(out) == 0 {
		t.Fatal("docs/reference.md: no subdirective tables found")
	}
	return out
}

// syntaxSubdirectives reads the syntax block of UnmarshalCaddyfile's doc
// comment: one tab deeper than `consoleme_auth {` is the directive's own
// block; a line ending in `{` (or `[{`) opens the block named by its first
// word (`store` opens `store redis`).
func syntaxSubdirectives(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "caddyfile.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var comment string
	for _, decl := range file.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.Name == "UnmarshalCaddyfile" && fn.Doc != nil {
			comment = fn.Doc.Text()
		}
	}
	_, syntax, ok := strings.Cut(comment, "\tconsoleme_auth {\n")
	if !ok {
		t.Fatal("UnmarshalCaddyfile's doc comment has no `consoleme_auth {` syntax block")
	}
	out := map[string][]string{}
	block := ""
	for _, line := range strings.Split(syntax, "\n") {
		depth := len(line) - len(strings.TrimLeft(line, "\t"))
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "}") || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch depth {
		case 2:
			block = ""
			out[""] = append(out[""], fields[0])
			if strings.HasSuffix(line, "{") {
				block = fields[0]
				if block == "store" {
					block = "store redis"
				}
			}
		case 3:
			out[block] = append(out[block], fields[0])
		}
	}
	return out
}
