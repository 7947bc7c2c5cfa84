package wire_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

// The golden vectors: fixed inputs whose encodings are in testdata/*.hex
// and, verbatim, in PROTOCOL.md ("Test vectors"). A .hex file is hex
// digits with free whitespace; '#' starts a comment that runs to the end
// of the line.

// Fixed inputs of the vectors (PROTOCOL.md lists them too).
var (
	goldenSecret   = []byte("correct horse battery staple")
	goldenExporter = seq(0x40, wire.ExporterLen)

	goldenDialerHello = wire.Hello{
		Version:  wire.Version,
		Flags:    wire.FlagAuth | wire.FlagExplicit,
		Instance: 0x0123456789abcdef,
		Nonce:    [wire.NonceLen]byte(seq(0x00, wire.NonceLen)),
		Codec:    "gob",
		Addr:     "10.0.0.1:7946",
		Meta:     []byte("zone=a"),
	}
	goldenListenerHello = wire.Hello{
		Version:  wire.Version,
		Flags:    wire.FlagAuth,
		Instance: 0xfedcba9876543210,
		Nonce:    [wire.NonceLen]byte(seq(0x20, wire.NonceLen)),
		Codec:    "gob",
		Addr:     "10.0.0.2:7946",
	}
	// goldenCapsHello announces two capability bits no version-1 node
	// implements: a receiver ignores them, and a link uses neither.
	goldenCapsHello = wire.Hello{
		Version:  wire.Version,
		Flags:    0x84,
		Instance: 7,
		Nonce:    [wire.NonceLen]byte(seq(0x40, wire.NonceLen)),
		Codec:    "json",
		Addr:     "10.0.0.5:7946",
	}
	goldenVerdicts = []struct {
		code   byte
		reason string
	}{
		{wire.VerdictAccept, ""},
		{wire.VerdictUnauthorized, "wrong secret"},
		{wire.VerdictBusy, "remote limit reached"},
	}
	goldenControl = wire.Control{Peers: []wire.Peer{
		{Addr: "10.0.0.3:7946", Instance: 0x0123456789abcdef},
		{Addr: "10.0.0.4:7946", Instance: 42},
	}}
)

// goldenFrames are the frames of frames.hex, in order; the control
// frame's body is goldenControl in the JSON codec.
func goldenFrames(t *testing.T) []struct {
	typ  byte
	body []byte
} {
	return []struct {
		typ  byte
		body []byte
	}{
		{wire.FrameData, []byte("hello")},
		{wire.FrameControl, jsonControl(t, &goldenControl)},
		{wire.FrameHeartbeat, nil},
		{wire.FrameGoodbye, nil},
	}
}

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func jsonControl(t *testing.T, c *wire.Control) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := codec.JSON.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var hexComment = regexp.MustCompile(`#[^\n]*`)

// parseHex decodes the .hex format.
func parseHex(t testing.TB, text string) []byte {
	t.Helper()
	s := hexComment.ReplaceAllString(text, "")
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

func readHex(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseHex(t, string(text))
}

func mustAppend(t testing.TB, h *wire.Hello) []byte {
	t.Helper()
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenHello(t *testing.T) {
	for name, h := range map[string]*wire.Hello{
		"hello-dialer.hex":       &goldenDialerHello,
		"hello-listener.hex":     &goldenListenerHello,
		"hello-capabilities.hex": &goldenCapsHello,
	} {
		t.Run(name, func(t *testing.T) {
			want := readHex(t, name)
			// (a) encode the documented values.
			if got := mustAppend(t, h); !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from %s:\n got %x\nwant %x", name, got, want)
			}
			// (b) parse the file and compare fields.
			got, raw, err := wire.ReadHello(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, want) {
				t.Fatalf("raw bytes %x, want %x", raw, want)
			}
			if got.Version != h.Version || got.Flags != h.Flags || got.Instance != h.Instance ||
				got.Nonce != h.Nonce || got.Codec != h.Codec || got.Addr != h.Addr || !bytes.Equal(got.Meta, h.Meta) {
				t.Fatalf("parsed %+v, want %+v", got, h)
			}
		})
	}
}

func TestGoldenProof(t *testing.T) {
	want := readHex(t, "proof.hex")
	d := mustAppend(t, &goldenDialerHello)
	l := mustAppend(t, &goldenListenerHello)
	var got []byte
	for _, exp := range [][]byte{nil, goldenExporter} {
		got = append(got, wire.Proof(goldenSecret, wire.RoleDialer, d, l, exp)...)
		got = append(got, wire.Proof(goldenSecret, wire.RoleListener, d, l, exp)...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("proofs differ from proof.hex:\n got %x\nwant %x", got, want)
	}
	// Parse: each proof in the file verifies for its role and inputs only.
	for i, exp := range [][]byte{nil, goldenExporter} {
		pd := want[(2*i)*wire.ProofLen : (2*i+1)*wire.ProofLen]
		pl := want[(2*i+1)*wire.ProofLen : (2*i+2)*wire.ProofLen]
		if !wire.VerifyProof(pd, goldenSecret, wire.RoleDialer, d, l, exp) ||
			!wire.VerifyProof(pl, goldenSecret, wire.RoleListener, d, l, exp) {
			t.Fatal("golden proofs do not verify")
		}
		if wire.VerifyProof(pd, goldenSecret, wire.RoleListener, d, l, exp) {
			t.Fatal("a dialer proof verifies as a listener proof (reflection)")
		}
		if wire.VerifyProof(pd, []byte("another secret, 16+ bytes"), wire.RoleDialer, d, l, exp) {
			t.Fatal("proof verifies under another secret")
		}
		other := goldenExporter
		if exp != nil {
			other = nil
		}
		if wire.VerifyProof(pd, goldenSecret, wire.RoleDialer, d, l, other) {
			t.Fatal("proof verifies for another TLS session")
		}
	}
}

func TestGoldenVerdict(t *testing.T) {
	want := readHex(t, "verdict.hex")
	var got []byte
	for _, v := range goldenVerdicts {
		got = wire.AppendVerdict(got, v.code, v.reason)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from verdict.hex:\n got %x\nwant %x", got, want)
	}
	r := bytes.NewReader(want)
	for _, v := range goldenVerdicts {
		code, reason, err := wire.ReadVerdict(r)
		if err != nil || code != v.code || reason != v.reason {
			t.Fatalf("parsed (%d, %q, %v), want (%d, %q)", code, reason, err, v.code, v.reason)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left over", r.Len())
	}
}

func TestGoldenFrames(t *testing.T) {
	want := readHex(t, "frames.hex")
	frames := goldenFrames(t)
	var got []byte
	for _, f := range frames {
		var h [wire.FrameHeaderLen]byte
		wire.PutFrameHeader(h[:], f.typ, len(f.body))
		got = append(append(got, h[:]...), f.body...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from frames.hex:\n got %x\nwant %x", got, want)
	}
	br := bufio.NewReader(bytes.NewReader(want))
	for _, f := range frames {
		typ, n, err := wire.ReadFrameHeader(br, 1<<10, 1<<10)
		if err != nil || typ != f.typ || n != len(f.body) {
			t.Fatalf("header (%#x, %d, %v), want (%#x, %d)", typ, n, err, f.typ, len(f.body))
		}
		body := make([]byte, n)
		if _, err := br.Read(body); n > 0 && err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, f.body) {
			t.Fatalf("body %q, want %q", body, f.body)
		}
		if typ == wire.FrameControl {
			var chunk wire.ChunkReader
			chunk.Reset(body)
			var c wire.Control
			if err := codec.JSON.NewDecoder(&chunk).Decode(&c); err != nil {
				t.Fatal(err)
			}
			if len(c.Peers) != len(goldenControl.Peers) || c.Peers[0] != goldenControl.Peers[0] || c.Peers[1] != goldenControl.Peers[1] || c.MetaSet || c.Meta != nil {
				t.Fatalf("control %+v, want %+v", c, goldenControl)
			}
		}
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("bytes left over")
	}
}

// The document and the code cannot drift: every hex block in PROTOCOL.md
// that names a testdata file is that file, verbatim, and every testdata
// vector appears in the document.
func TestProtocolDocEmbedsTestdata(t *testing.T) {
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hex (testdata/[a-z-]+\\.hex)\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		name, body := b[1], b[2]
		file, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			t.Fatalf("PROTOCOL.md embeds %s: %v", name, err)
		}
		if body != string(file) {
			t.Errorf("PROTOCOL.md's block for %s differs from the file", name)
		}
		if !bytes.Equal(parseHex(t, body), parseHex(t, string(file))) {
			t.Errorf("PROTOCOL.md's bytes for %s differ from the file", name)
		}
		seen[name] = true
	}
	files, _ := filepath.Glob("testdata/*.hex")
	if len(files) == 0 {
		t.Fatal("no vectors in testdata")
	}
	for _, f := range files {
		if !seen[filepath.ToSlash(f)] {
			t.Errorf("PROTOCOL.md does not embed %s", f)
		}
	}
}

// Each file of the package names the PROTOCOL.md section it mirrors, and
// that section exists.
func TestSourceNamesProtocolSections(t *testing.T) {
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ +(?:\d+(?:\.\d+)*\.? +)?(.+?)\s*$`).FindAllStringSubmatch(string(doc), -1) {
		headings[m[1]] = true
	}
	files, _ := filepath.Glob("*.go")
	ref := regexp.MustCompile(`PROTOCOL\.md, "([^"]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		ms := ref.FindAllStringSubmatch(string(src), -1)
		if len(ms) == 0 {
			t.Errorf("%s names no PROTOCOL.md section", f)
		}
		for _, m := range ms {
			if !headings[m[1]] {
				t.Errorf("%s names section %q, which PROTOCOL.md does not have", f, m[1])
			}
		}
	}
}

// Capability bits are the flags above the two defined ones: the vector's
// 0x84 is two of them, and neither flag.
func TestGoldenCapabilities(t *testing.T) {
	h, _, err := wire.ReadHello(bytes.NewReader(readHex(t, "hello-capabilities.hex")))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Capabilities(); got != 0x84 {
		t.Fatalf("capabilities %#x, want 0x84", got)
	}
	if h.Flags&(wire.FlagAuth|wire.FlagExplicit) != 0 {
		t.Fatalf("flags %#x: capability bits read as auth or explicit", h.Flags)
	}
	if wire.CapabilityMask&(wire.FlagAuth|wire.FlagExplicit) != 0 {
		t.Fatal("the capability mask overlaps the defined flags")
	}
	if got := goldenDialerHello.Capabilities(); got != 0 {
		t.Fatalf("the dialer vector (auth|explicit) has capabilities %#x", got)
	}
}

// Rotation: proofs made with a second secret over the same hellos verify
// under that secret only, so a listener holding both knows, by trying
// each, which one a dialer used, with no extra message.
func TestGoldenProofRotation(t *testing.T) {
	second := []byte("a new secret for the rotation")
	want := readHex(t, "proof-rotation.hex")
	d := mustAppend(t, &goldenDialerHello)
	l := mustAppend(t, &goldenListenerHello)
	got := append(wire.Proof(second, wire.RoleDialer, d, l, nil), wire.Proof(second, wire.RoleListener, d, l, nil)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("proofs differ from proof-rotation.hex:\n got %x\nwant %x", got, want)
	}
	pd := want[:wire.ProofLen]
	if wire.VerifyProof(pd, goldenSecret, wire.RoleDialer, d, l, nil) {
		t.Fatal("a proof made with the second secret verifies under the first")
	}
	if !wire.VerifyProof(pd, second, wire.RoleDialer, d, l, nil) {
		t.Fatal("the second secret's proof does not verify")
	}
}
