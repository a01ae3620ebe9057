#!/usr/bin/env python3
"""Writes the seccomp profiles container engines put into config.json, as test fixtures.

Each fixture is the OCI `linux.seccomp` object an engine sends for an x86_64 host and a
container with the engine's default capability set (see seccomp/tests/fixtures/engines/
README.md for the list, sources and conversion rules). Run once; the output is committed:

    scripts/engine_seccomp_profiles.py --moby GITDIR --containerd GITDIR \\
        --common GITDIR --runtime-tools GITDIR [--out DIR]

Each GITDIR is a (bare) git directory of the engine's repository; files are read with
`git --git-dir=GITDIR show TAG:PATH`. Python 3 standard library only.

Docker and podman ship their profile as JSON with docker's extra keys (archMap,
includes/excludes on caps, arches and minKernel, comment); the daemon keeps a rule when
those match and drops the extra keys. That is reimplemented here from each engine's
setupSeccomp at the same tag. containerd and runtime-tools build the profile in Go; a
small interpreter below evaluates exactly the Go subset those two functions use
(composite literals, append, switch with fallthrough, for-range, if) with
runtime.GOARCH = "amd64" and the default capabilities, so the lists are read from the
source rather than copied by hand.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ARCH = "amd64"
# minKernel conditions are decided for this host kernel (dockerd reads the running
# kernel's version; any kernel since 4.8 gives the same result for these profiles).
KERNEL = (6, 1)

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# containerd's oci.defaultUnixCaps and runtime-tools' generate default: the same 14.
CONTAINERD_CAPS = DOCKER_CAPS
RUNTIME_TOOLS_CAPS = DOCKER_CAPS
PODMAN_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT",
]


def git_show(gitdir, tag, path):
    return subprocess.run(
        ["git", "--git-dir", gitdir, "show", f"{tag}:{path}"],
        check=True, capture_output=True, text=True,
    ).stdout


def kernel_ge(s):
    parts = [int(p) for p in re.findall(r"\d+", s)[:2]]
    return KERNEL >= tuple(parts + [0] * (2 - len(parts)))


# ---------------------------------------------------------------------------
# OCI output, with runtime-spec's Go JSON tags (field order and omitempty)

def oci_arg(a):
    out = {"index": a["index"], "value": a["value"]}
    if a.get("valueTwo"):
        out["valueTwo"] = a["valueTwo"]
    out["op"] = a["op"]
    return out


def oci_syscall(names, action, errno_ret, args):
    out = {"names": names, "action": action}
    if errno_ret is not None:
        out["errnoRet"] = errno_ret
    if args:
        out["args"] = [oci_arg(a) for a in args]
    return out


def oci_seccomp(default_action, default_errno_ret, arches, flags, listener_path,
                listener_metadata, syscalls):
    out = {"defaultAction": default_action}
    if default_errno_ret is not None:
        out["defaultErrnoRet"] = default_errno_ret
    if arches:
        out["architectures"] = arches
    if flags:
        out["flags"] = flags
    if listener_path:
        out["listenerPath"] = listener_path
    if listener_metadata:
        out["listenerMetadata"] = listener_metadata
    if syscalls:
        out["syscalls"] = syscalls
    return out


# ---------------------------------------------------------------------------
# docker / podman JSON profiles

def arch_map(profile):
    for m in profile.get("archMap") or []:
        if m["architecture"] == "SCMP_ARCH_X86_64":
            return [m["architecture"]] + list(m.get("subArchitectures") or [])
    return []


def docker_convert(profile, caps, copy_spec_fields):
    """moby profiles/seccomp setupSeccomp. `copy_spec_fields`: docker >= 23 copies
    defaultErrnoRet, flags and the listener fields; 20.10 keeps only defaultAction."""
    arches = list(profile.get("architectures") or []) + arch_map(profile)
    syscalls = []
    for call in profile["syscalls"]:
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if ARCH in (exc.get("arches") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if exc.get("minKernel") and kernel_ge(exc["minKernel"]):
            continue
        if inc.get("arches") and ARCH not in inc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        if inc.get("minKernel") and not kernel_ge(inc["minKernel"]):
            continue
        names = [call["name"]] if call.get("name") else call["names"]
        syscalls.append(oci_syscall(names, call["action"], call.get("errnoRet"),
                                    call.get("args")))
    if copy_spec_fields:
        return oci_seccomp(profile["defaultAction"], profile.get("defaultErrnoRet"), arches,
                           profile.get("flags"), profile.get("listenerPath"),
                           profile.get("listenerMetadata"), syscalls)
    return oci_seccomp(profile["defaultAction"], None, arches, None, None, None, syscalls)


ERRNOS = {"EPERM": 1, "ENOENT": 2, "EINVAL": 22, "ENOSYS": 38, "EACCES": 13}


def podman_errno(name, ret):
    if not name:
        return ret
    if name.isdigit():
        return int(name)
    return ERRNOS[name]


def podman_convert(profile, caps):
    """containers/common pkg/seccomp setupSeccomp: no minKernel; `errno` names win over
    `errnoRet`; defaultErrno likewise."""
    arches = list(profile.get("architectures") or []) + arch_map(profile)
    syscalls = []
    for call in profile["syscalls"]:
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if ARCH in (exc.get("arches") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if inc.get("arches") and ARCH not in inc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        errno = podman_errno(call.get("errno"), call.get("errnoRet"))
        if call.get("name"):
            syscalls.append(oci_syscall([call["name"]], call["action"], errno, call.get("args")))
        if call.get("names"):
            syscalls.append(oci_syscall(call["names"], call["action"], errno, call.get("args")))
    return oci_seccomp(profile["defaultAction"],
                       podman_errno(profile.get("defaultErrno"), profile.get("defaultErrnoRet")),
                       arches, profile.get("flags"), profile.get("listenerPath"),
                       profile.get("listenerMetadata"), syscalls)


# ---------------------------------------------------------------------------
# A Go subset interpreter for containerd's and runtime-tools' DefaultProfile

TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+) | (?P<nl>\n) | (?P<lc>//[^\n]*) | (?P<bc>/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*") | (?P<raw>`[^`]*`)
  | (?P<num>0[xX][0-9a-fA-F_]+|\d+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|:=|==|!=|&&|\|\||<=|>=|<<|>>|[-+*/%&|^!<>=(){}\[\],;:.])
""", re.X | re.S)

SEMI_AFTER = {"id", "str", "raw", "num"}
SEMI_AFTER_OPS = {")", "]", "}"}
SEMI_AFTER_KW = {"return", "break", "fallthrough", "continue"}


def tokenize(src):
    toks = []
    pos = 0
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m:
            raise SyntaxError(f"cannot tokenize at {src[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind in ("ws", "lc"):
            continue
        if kind == "nl" or (kind == "bc" and "\n" in text):
            if toks and (toks[-1][0] in SEMI_AFTER or toks[-1][1] in SEMI_AFTER_OPS
                         or toks[-1][1] in SEMI_AFTER_KW) and toks[-1][1] != ";":
                toks.append(("op", ";"))
            continue
        if kind == "bc":
            continue
        if kind == "raw":
            kind = "str"
        toks.append((kind, text))
    toks.append(("eof", ""))
    return toks


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self, k=0):
        return self.t[self.i + k]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def at(self, text):
        return self.peek()[1] == text and self.peek()[0] in ("op", "id")

    def expect(self, text):
        tok = self.next()
        if tok[1] != text:
            raise SyntaxError(f"expected {text!r}, got {tok!r} near {self.t[self.i:self.i + 8]}")
        return tok

    def skip_semis(self):
        while self.at(";"):
            self.next()

    # -- declarations
    def functions(self):
        funcs = {}
        while self.peek()[0] != "eof":
            if self.at("func"):
                self.next()
                name = self.next()[1]
                self.expect("(")
                params = []
                while not self.at(")"):
                    params.append(self.next()[1])
                    self.type_()
                    if self.at(","):
                        self.next()
                self.expect(")")
                if not self.at("{"):
                    self.type_()
                funcs[name] = (params, self.block())
            else:
                self.next()
        return funcs

    def type_(self):
        if self.at("*"):
            self.next()
            return self.type_()
        if self.at("["):
            self.next()
            self.expect("]")
            return ("slice", self.type_())
        if self.at("map"):
            self.next()
            self.expect("[")
            self.type_()
            self.expect("]")
            self.type_()
            return ("map",)
        name = self.next()[1]
        while self.at("."):
            self.next()
            name += "." + self.next()[1]
        return ("named", name)

    # -- statements
    def block(self):
        self.expect("{")
        stmts = []
        self.skip_semis()
        while not self.at("}"):
            stmts.append(self.stmt())
            self.skip_semis()
        self.expect("}")
        return stmts

    def stmt(self):
        if self.at("return"):
            self.next()
            if self.at(";") or self.at("}"):
                return ("return", None)
            return ("return", self.expr())
        if self.at("fallthrough"):
            self.next()
            return ("fallthrough",)
        if self.at("break"):
            self.next()
            return ("break",)
        if self.at("var"):
            self.next()
            name = self.next()[1]
            self.type_()
            value = None
            if self.at("="):
                self.next()
                value = self.expr()
            return ("var", name, value)
        if self.at("switch"):
            self.next()
            tag = None if self.at("{") else self.expr(nolit=True)
            self.expect("{")
            clauses = []
            self.skip_semis()
            while not self.at("}"):
                if self.at("default"):
                    self.next()
                    values = None
                else:
                    self.expect("case")
                    values = [self.expr()]
                    while self.at(","):
                        self.next()
                        values.append(self.expr())
                self.expect(":")
                body = []
                self.skip_semis()
                while not (self.at("case") or self.at("default") or self.at("}")):
                    body.append(self.stmt())
                    self.skip_semis()
                clauses.append((values, body))
            self.expect("}")
            return ("switch", tag, clauses)
        if self.at("for"):
            self.next()
            names = [self.next()[1]]
            while self.at(","):
                self.next()
                names.append(self.next()[1])
            self.expect(":=")
            self.expect("range")
            over = self.expr(nolit=True)
            return ("range", names, over, self.block())
        if self.at("if"):
            self.next()
            init = None
            save = self.i
            try:
                init = self.simple(nolit=True)
                if not self.at(";"):
                    raise SyntaxError("no init")
                self.next()
            except SyntaxError:
                self.i = save
                init = None
            cond = self.expr(nolit=True)
            then = self.block()
            other = None
            if self.at("else"):
                self.next()
                other = [self.stmt()] if self.at("if") else self.block()
            return ("if", init, cond, then, other)
        return self.simple()

    def simple(self, nolit=False):
        lhs = [self.expr(nolit)]
        while self.at(","):
            self.next()
            lhs.append(self.expr(nolit))
        if self.at(":=") or self.at("="):
            op = self.next()[1]
            return ("assign", op, lhs, self.expr(nolit))
        if len(lhs) != 1:
            raise SyntaxError("expression list without assignment")
        return ("expr", lhs[0])

    # -- expressions
    PREC = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
            "+": 4, "-": 4, "|": 4, "^": 4, "*": 5, "/": 5, "%": 5, "<<": 5, ">>": 5, "&": 5}

    def expr(self, nolit=False, prec=1):
        left = self.unary(nolit)
        while True:
            tok = self.peek()
            p = self.PREC.get(tok[1]) if tok[0] == "op" else None
            if p is None or p < prec:
                return left
            self.next()
            right = self.expr(nolit, p + 1)
            left = ("bin", tok[1], left, right)

    def unary(self, nolit):
        if self.at("!") or self.at("&") or self.at("-"):
            op = self.next()[1]
            return ("un", op, self.unary(nolit))
        return self.primary(nolit)

    def primary(self, nolit):
        tok = self.peek()
        if tok[0] == "num":
            self.next()
            e = ("lit", int(tok[1].replace("_", ""), 0))
        elif tok[0] == "str":
            self.next()
            e = ("lit", json.loads(tok[1]) if tok[1].startswith('"') else tok[1][1:-1])
        elif self.at("("):
            self.next()
            e = self.expr()
            self.expect(")")
        elif self.at("[") or self.at("map"):
            t = self.type_()
            return self.literal(t) if self.at("{") else ("type", t)
        elif self.at("{"):
            return self.literal(None)
        elif tok[0] == "id":
            self.next()
            e = ("name", tok[1])
        else:
            raise SyntaxError(f"unexpected {tok!r}")
        while True:
            if self.at("."):
                self.next()
                e = ("sel", e, self.next()[1])
            elif self.at("("):
                self.next()
                args = []
                spread = False
                while not self.at(")"):
                    if self.at("["):
                        args.append(self.literal(self.type_()))
                    else:
                        args.append(self.expr())
                    if self.at("..."):
                        self.next()
                        spread = True
                    if self.at(","):
                        self.next()
                self.expect(")")
                e = ("call", e, args, spread)
            elif self.at("["):
                self.next()
                idx = self.expr()
                self.expect("]")
                e = ("index", e, idx)
            elif self.at("{") and not nolit and e[0] in ("name", "sel"):
                e = self.literal(e)
            else:
                return e

    def literal(self, typ):
        self.expect("{")
        elems = []
        self.skip_semis()
        while not self.at("}"):
            if self.at("{"):
                value = self.literal(None)
                elems.append((None, value))
            else:
                first = self.expr()
                if self.at(":"):
                    self.next()
                    key = first[1] if first[0] == "name" else first
                    value = self.literal(None) if self.at("{") else self.expr()
                    elems.append((key, value))
                else:
                    elems.append((None, first))
            if self.at(","):
                self.next()
            self.skip_semis()
        self.expect("}")
        return ("composite", typ, elems)


SPEC_CONSTS = {
    "ActKill": "SCMP_ACT_KILL", "ActKillProcess": "SCMP_ACT_KILL_PROCESS",
    "ActKillThread": "SCMP_ACT_KILL_THREAD", "ActTrap": "SCMP_ACT_TRAP",
    "ActErrno": "SCMP_ACT_ERRNO", "ActTrace": "SCMP_ACT_TRACE", "ActAllow": "SCMP_ACT_ALLOW",
    "ActLog": "SCMP_ACT_LOG", "ActNotify": "SCMP_ACT_NOTIFY",
    "OpNotEqual": "SCMP_CMP_NE", "OpLessThan": "SCMP_CMP_LT", "OpLessEqual": "SCMP_CMP_LE",
    "OpEqualTo": "SCMP_CMP_EQ", "OpGreaterEqual": "SCMP_CMP_GE",
    "OpGreaterThan": "SCMP_CMP_GT", "OpMaskedEqual": "SCMP_CMP_MASKED_EQ",
    "ArchX86": "SCMP_ARCH_X86", "ArchX86_64": "SCMP_ARCH_X86_64", "ArchX32": "SCMP_ARCH_X32",
    "ArchARM": "SCMP_ARCH_ARM", "ArchAARCH64": "SCMP_ARCH_AARCH64",
}
# golang.org/x/sys/unix values on linux/amd64 (the ones these two files use).
UNIX_CONSTS = {
    "CLONE_NEWNS": 0x20000, "CLONE_NEWUTS": 0x4000000, "CLONE_NEWIPC": 0x8000000,
    "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWCGROUP": 0x2000000, "CLONE_NEWTIME": 0x80,
    "ENOSYS": 38, "EPERM": 1, "EINVAL": 22,
    "AF_ALG": 38, "AF_VSOCK": 40, "AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10,
    "AF_NETLINK": 16, "AF_PACKET": 17,
}


class Fallthrough(Exception):
    pass


class Return(Exception):
    def __init__(self, value):
        self.value = value


class Interp:
    def __init__(self, funcs, consts, spec):
        self.funcs = funcs
        self.consts = consts
        self.spec = spec

    def call_func(self, name, args):
        params, body = self.funcs[name]
        env = dict(zip(params, args))
        try:
            self.run(body, env)
        except Return as r:
            return r.value
        return None

    def run(self, stmts, env):
        for s in stmts:
            self.stmt(s, env)

    def stmt(self, s, env):
        kind = s[0]
        if kind == "return":
            raise Return(None if s[1] is None else self.eval(s[1], env))
        if kind == "fallthrough":
            raise Fallthrough()
        if kind == "break":
            raise StopIteration()
        if kind == "var":
            env[s[1]] = self.eval(s[2], env) if s[2] is not None else 0
        elif kind == "assign":
            _, op, lhs, rhs = s
            value = self.eval(rhs, env)
            if len(lhs) > 1:
                for target, v in zip(lhs, value):
                    self.assign(target, v, env)
            else:
                self.assign(lhs[0], value, env)
        elif kind == "expr":
            self.eval(s[1], env)
        elif kind == "switch":
            tag = True if s[1] is None else self.eval(s[1], env)
            chosen = None
            for n, (values, _) in enumerate(s[2]):
                if values is not None and any(self.eval(v, env) == tag for v in values):
                    chosen = n
                    break
            if chosen is None:
                chosen = next((n for n, (v, _) in enumerate(s[2]) if v is None), None)
            while chosen is not None:
                try:
                    self.run(s[2][chosen][1], env)
                    chosen = None
                except Fallthrough:
                    chosen += 1
                except StopIteration:
                    chosen = None
        elif kind == "range":
            names, over, body = s[1], s[2], s[3]
            coll = self.eval(over, env)
            # A Go map ranges in random order; sorted here (the README notes where the
            # order could matter).
            items = sorted(coll.items()) if isinstance(coll, dict) else list(enumerate(coll))
            for k, v in items:
                if len(names) == 1:
                    env[names[0]] = k
                else:
                    env[names[0]], env[names[1]] = k, v
                self.run(body, env)
        elif kind == "if":
            _, init, cond, then, other = s
            if init is not None:
                self.stmt(init, env)
            if self.eval(cond, env):
                self.run(then, env)
            elif other is not None:
                self.run(other, env)
        else:
            raise SyntaxError(f"statement {kind}")

    def assign(self, target, value, env):
        if target[0] == "name":
            env[target[1]] = value
        elif target[0] == "sel":
            self.eval(target[1], env)[target[2]] = value
        elif target[0] == "index":
            self.eval(target[1], env)[self.eval(target[2], env)] = value
        else:
            raise SyntaxError(f"assign to {target}")

    def eval(self, e, env):
        kind = e[0]
        if kind == "lit":
            return e[1]
        if kind == "name":
            n = e[1]
            if n in env:
                return env[n]
            if n in self.consts:
                return self.consts[n]
            if n == "nil":
                return None
            if n in ("true", "false"):
                return n == "true"
            if n == "_":
                return None
            raise NameError(n)
        if kind == "sel":
            base = e[1]
            if base[0] == "name" and base[1] not in env:
                pkg, name = base[1], e[2]
                if pkg in ("specs", "rspec"):
                    return SPEC_CONSTS[name]
                if pkg == "unix":
                    return UNIX_CONSTS[name]
                if pkg == "runtime" and name == "GOARCH":
                    return ARCH
                raise NameError(f"{pkg}.{name}")
            return self.eval(base, env)[e[2]]
        if kind == "index":
            return self.eval(e[1], env)[self.eval(e[2], env)]
        if kind == "un":
            v = self.eval(e[2], env)
            return {"!": lambda: not v, "&": lambda: v, "-": lambda: -v}[e[1]]()
        if kind == "bin":
            a, b = self.eval(e[2], env), self.eval(e[3], env)
            return {
                "|": lambda: a | b, "+": lambda: a + b, "&": lambda: a & b,
                "==": lambda: a == b, "!=": lambda: a != b,
                "&&": lambda: a and b, "||": lambda: a or b,
            }[e[1]]()
        if kind == "call":
            fn, args, spread = e[1], e[2], e[3]
            if fn[0] == "name" and fn[1] == "append":
                base = list(self.eval(args[0], env) or [])
                rest = [self.eval(a, env) for a in args[1:]]
                if spread:
                    rest = rest[0]
                return base + list(rest)
            if fn[0] == "name" and fn[1] in ("uint", "uint64", "uint32", "int"):
                return self.eval(args[0], env)
            if fn[0] == "name" and fn[1] == "make":
                return {}
            if fn[0] == "name" and fn[1] in self.funcs:
                return self.call_func(fn[1], [self.eval(a, env) for a in args])
            if fn == ("sel", ("name", "kernelversion"), "GreaterEqualThan"):
                v = self.eval(args[0], env)
                return (KERNEL >= (v.get("Kernel", 0), v.get("Major", 0)), None)
            raise NameError(f"call {fn}")
        if kind == "composite":
            typ, elems = e[1], e[2]
            if elems and elems[0][0] is not None:
                return {k: self.eval(v, env) for k, v in elems}
            if typ is not None and typ[0] == "named" and not elems:
                return {}
            return [self.eval(v, env) for _, v in elems]
        raise SyntaxError(f"expression {kind}")


def go_profile(src, caps, extra_consts=None):
    funcs = Parser(tokenize(src)).functions()
    spec = {"Process": {"Capabilities": {
        "Bounding": list(caps), "Effective": list(caps), "Inheritable": [],
        "Permitted": list(caps), "Ambient": [],
    }}}
    interp = Interp(funcs, dict(extra_consts or {}), spec)
    s = interp.call_func("DefaultProfile", [spec])
    syscalls = []
    for c in s.get("Syscalls") or []:
        args = [{"index": a.get("Index", 0), "value": a.get("Value", 0),
                 "valueTwo": a.get("ValueTwo", 0), "op": a.get("Op", "")}
                for a in c.get("Args") or []]
        syscalls.append(oci_syscall(c.get("Names") or [], c.get("Action", ""),
                                    c.get("ErrnoRet"), args))
    return oci_seccomp(s.get("DefaultAction", ""), s.get("DefaultErrnoRet"),
                       s.get("Architectures"), s.get("Flags"), s.get("ListenerPath"),
                       s.get("ListenerMetadata"), syscalls)


def go_consts(src):
    """`Name = unix.X` / `Name = syscall.X` / `Name = 0x...` constants of a Go file
    (runtime-tools' seccomp_default_linux.go)."""
    out = {}
    for m in re.finditer(r"^\s*([A-Z][A-Za-z0-9_]*)\s*=\s*(?:(?:unix|syscall)\.([A-Z_0-9]+)|"
                         r"(0[xX][0-9a-fA-F]+|\d+))\s*$", src, re.M):
        out[m.group(1)] = UNIX_CONSTS[m.group(2)] if m.group(2) else int(m.group(3), 0)
    return out


# ---------------------------------------------------------------------------

SOURCES = {
    "docker-20.10": ("moby", "v20.10.24", "profiles/seccomp/default.json"),
    "docker-28": ("moby", "v28.5.2", "vendor/github.com/moby/profiles/seccomp/default.json"),
    "containerd-1.6": ("containerd", "v1.6.39", "contrib/seccomp/seccomp_default.go"),
    "containerd-2.0": ("containerd", "v2.0.11", "contrib/seccomp/seccomp_default.go"),
    "podman": ("common", "v0.64.1", "pkg/seccomp/seccomp.json"),
    "oci-runtime-tool-0.9.0": ("runtime-tools", "v0.9.0", "generate/seccomp/seccomp_default.go"),
    # master: no release since v0.9.0 (2019); validation suites are built from it.
    "oci-runtime-tool": ("runtime-tools", "5e639034dcdc2422164e3d7d76a737e2fb451a67",
                         "generate/seccomp/seccomp_default.go"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moby", required=True)
    ap.add_argument("--containerd", required=True)
    ap.add_argument("--common", required=True)
    ap.add_argument("--runtime-tools", required=True, dest="runtime_tools")
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "seccomp", "tests", "fixtures",
        "engines"))
    a = ap.parse_args()
    repos = {"moby": a.moby, "containerd": a.containerd, "common": a.common,
             "runtime-tools": a.runtime_tools}
    os.makedirs(a.out, exist_ok=True)
    for name, (repo, tag, path) in SOURCES.items():
        text = git_show(repos[repo], tag, path)
        if name == "docker-20.10":
            prof = docker_convert(json.loads(text), DOCKER_CAPS, copy_spec_fields=False)
        elif name == "docker-28":
            prof = docker_convert(json.loads(text), DOCKER_CAPS, copy_spec_fields=True)
        elif name == "podman":
            prof = podman_convert(json.loads(text), PODMAN_CAPS)
        elif repo == "containerd":
            prof = go_profile(text, CONTAINERD_CAPS)
        else:
            consts = go_consts(git_show(repos[repo], tag,
                                        "generate/seccomp/seccomp_default_linux.go"))
            prof = go_profile(text, RUNTIME_TOOLS_CAPS, consts)
        dest = os.path.join(a.out, f"{name}.json")
        with open(dest, "w") as f:
            json.dump(prof, f, indent=2)
            f.write("\n")
        n = sum(len(s["names"]) for s in prof.get("syscalls", []))
        print(f"{dest}: {repo} {tag}:{path}: {len(prof.get('syscalls', []))} rules, "
              f"{n} names", file=sys.stderr)


if __name__ == "__main__":
    main()
