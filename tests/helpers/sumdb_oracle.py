"""golang.org/x/mod's sumdb/note and sumdb/tlog as an oracle for modgate's formats.

The Go toolchain carries x/mod in its source tree for the go command. A small
Go program is built against that copy (offline: GOPROXY=off) and answers
one JSON request per line, so the tests can compare modgate's keys, notes,
hashes, tiles and proofs with what the go command itself computes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.xmod import xmod_program

XMOD_PACKAGES = ("sumdb/note", "sumdb/tlog")

ORACLE_GO = r"""
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Op    string
	A, B  string
	N, H  int
	Pairs [][2]int64
}

type answer struct {
	S, S2 string
	Kind  string
	Err   string
	List  []string
}

type hashes []tlog.Hash

func (h hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

type tiles struct {
	h    int
	data hashes
}

func (t tiles) Height() int { return t.h }
func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		d, err := tlog.ReadTileData(tile, t.data)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}
func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// Record i of the test logs; the Python side builds the same texts.
func record(i int64) []byte {
	return []byte(fmt.Sprintf("example.com/m%d v1.0.%d h1:x\n", i, i))
}

func kind(err error) string {
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &unverified):
		return "unverified"
	case errors.As(err, &invalid):
		return "invalid"
	}
	return "malformed"
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func proofText(p []tlog.Hash) string {
	var parts []string
	for _, h := range p {
		parts = append(parts, h.String())
	}
	return strings.Join(parts, ",")
}

func logLines(n int64, h int, pairs [][2]int64) []string {
	var out []string
	var stored hashes
	for i := int64(0); i < n; i++ {
		out = append(out, fmt.Sprintf("treehash %d %v", i, must(tlog.TreeHash(i, stored))))
		add, err := tlog.StoredHashes(i, record(i), stored)
		if err != nil {
			panic(err)
		}
		stored = append(stored, add...)
	}
	out = append(out, fmt.Sprintf("treehash %d %v", n, must(tlog.TreeHash(n, stored))))
	out = append(out, fmt.Sprintf("count %d", tlog.StoredHashCount(n)))
	for i, x := range stored {
		level, k := tlog.SplitStoredHashIndex(int64(i))
		t := tlog.TileForIndex(h, int64(i))
		out = append(out, fmt.Sprintf("stored %d %v %d %d %s", i, x, level, k, t.Path()))
	}
	for _, t := range tlog.NewTiles(h, 0, n) {
		d, err := tlog.ReadTileData(t, stored)
		if err != nil {
			panic(err)
		}
		out = append(out, fmt.Sprintf("tile %s %s", t.Path(), hex.EncodeToString(d)))
	}
	for _, t := range tlog.NewTiles(h, n/3, n) {
		out = append(out, "newtile "+t.Path())
	}
	tree := tlog.Tree{N: n, Hash: must(tlog.TreeHash(n, stored))}
	out = append(out, "tree "+strings.ReplaceAll(string(tlog.FormatTree(tree)), "\n", "|"))
	reader := tlog.TileHashReader(tree, tiles{h, stored})
	for _, pair := range pairs {
		t, k := pair[0], pair[1]
		if t <= n && k < t {
			p, err := tlog.ProveRecord(t, k, stored)
			out = append(out, fmt.Sprintf("rproof %d %d %s %s", t, k, proofText(p), msg(err)))
		}
		if t <= n && k >= 1 && k <= t {
			p, err := tlog.ProveTree(t, k, stored)
			out = append(out, fmt.Sprintf("tproof %d %d %s %s", t, k, proofText(p), msg(err)))
		}
		if k < n && t == n {
			got, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, k)})
			if err != nil {
				panic(err)
			}
			out = append(out, fmt.Sprintf("tileread %d %v", k, got[0]))
		}
	}
	return out
}

func must(h tlog.Hash, err error) tlog.Hash {
	if err != nil {
		panic(err)
	}
	return h
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			panic(err)
		}
		var a answer
		switch r.Op {
		case "keygen":
			seed, err := hex.DecodeString(r.B)
			if err != nil {
				panic(err)
			}
			skey, vkey, err := note.GenerateKey(bytes.NewReader(seed), r.A)
			a.S, a.S2, a.Err = skey, vkey, msg(err)
		case "verifier":
			v, err := note.NewVerifier(r.A)
			if err == nil {
				a.S = fmt.Sprintf("%s %08x", v.Name(), v.KeyHash())
			}
			a.Err = msg(err)
		case "signer":
			s, err := note.NewSigner(r.A)
			if err == nil {
				a.S = fmt.Sprintf("%s %08x", s.Name(), s.KeyHash())
			}
			a.Err = msg(err)
		case "sign":
			s, err := note.NewSigner(r.A)
			if err == nil {
				var out []byte
				out, err = note.Sign(&note.Note{Text: r.B}, s)
				a.S = string(out)
			}
			a.Err = msg(err)
		case "open":
			var vs []note.Verifier
			for _, k := range strings.Fields(r.A) {
				v, err := note.NewVerifier(k)
				if err != nil {
					panic(err)
				}
				vs = append(vs, v)
			}
			n, err := note.Open([]byte(r.B), note.VerifierList(vs...))
			if n != nil {
				a.S = n.Text
				for _, s := range n.Sigs {
					a.List = append(a.List, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
				}
			}
			a.Kind, a.Err = kind(err), msg(err)
		case "tlog":
			a.List = logLines(int64(r.N), r.H, r.Pairs)
		case "tilepath":
			t, err := tlog.ParseTilePath(r.A)
			if err == nil {
				a.S = fmt.Sprintf("%d %d %d %d", t.H, t.L, t.N, t.W)
			}
			a.Err = msg(err)
		case "tree":
			t, err := tlog.ParseTree([]byte(r.A))
			if err == nil {
				a.S = fmt.Sprintf("%d %v", t.N, t.Hash)
			}
			a.Err = msg(err)
		case "record":
			id, text, rest, err := tlog.ParseRecord([]byte(r.A))
			if err == nil {
				a.S = fmt.Sprintf("%d|%s|%s", id, text, rest)
			}
			a.Err = msg(err)
		default:
			panic("unknown op " + r.Op)
		}
		if err := enc.Encode(a); err != nil {
			panic(err)
		}
	}
}
"""


class SumdbOracle:
    """A running oracle process; ``ask`` sends one request and reads its answer."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def ask(self, op: str, a: str = "", b: str = "", **more: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"Op": op, "A": a, "B": b, **more}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer


def oracle_record(i: int) -> bytes:
    """Record ``i`` of the oracle's test logs."""
    return f"example.com/m{i} v1.0.{i} h1:x\n".encode()


def start_oracle(work: Path, gocache: Path) -> Iterator[SumdbOracle]:
    """Build the oracle in ``work`` and run it for the duration of the generator."""
    with xmod_program(work, ORACLE_GO, XMOD_PACKAGES, "sumdb/note/note.go", gocache) as proc:
        yield SumdbOracle(proc)
