/**
 * Installing a release's wheels without pip, when what pip would do is certain.
 *
 * On a node's first release, pip's own cost is most of the wait: the shared pip
 * unpacked and compiled (about 1,000 files), pip's start (371 modules), its resolver,
 * then one thread writing every file. pip's resolution has nothing to choose when
 * every distribution it reaches (requirements.txt's names and, through the wheels'
 * `Requires-Dist`, their dependencies) has exactly one version in `wheels/` that this
 * Python accepts and requirements.txt allows, and that version meets every requirement
 * on it: as `sacar pack` (`pip wheel`) and lock files make them. Then the result is
 * that set, each wheel chosen by pip's own tag order, and
 * what pip then does to install a wheel is a short, fixed recipe (pip's
 * `operations/install/wheel.py`, the same from pip 22.2 to 24): each file of the
 * archive written under site-packages or the scheme its `.data` folder names,
 * `#!python` in a data script replaced by the venv's interpreter, a script per console
 * and GUI entry point (distlib's template and shebang), INSTALLER, REQUESTED, and a
 * RECORD built from the wheel's own. This module does exactly that, on every core.
 *
 * Whenever the release is anything else (versions pip would choose between, a
 * requirement not met, a marker or version comparison not certain here, options or
 * URLs in requirements.txt, extras, an older pip, anything the recipe does not cover),
 * the plan says why and pip installs as before. test/python/wheel-installer.test.ts installs the same
 * releases both ways with every Python on the machine and compares the venvs file for
 * file, byte for byte, mode for mode. See docs/decisions.md.
 */
import * as Effect from "effect/Effect"
import { availableParallelism } from "node:os"
import { basename } from "node:path"
import type { ProcessFailed, ProcessTimedOut } from "../process/run.ts"
import { runProcess } from "../process/run.ts"
import type { Interpreter } from "./interpreter.ts"

/**
 * Whether `wheel` (a pip wheel's path) is a pip whose install recipe this module follows,
 * as the equivalence test checks it: 22.2 to 24. Before 22.2 pip left the wheel's hash
 * of a data script whose `#!python` it rewrote in RECORD (pypa/pip#11052); 3.7 bundles
 * 22.0.4, and pip installs there.
 */
export const followsPip = (wheel: string): boolean => /^pip-(22\.([2-9]|\d\d)|2[34]\.\d)/.test(basename(wheel))

// Shared by both scripts: the entries of an entry_points.txt, as its readers split it.
const ENTRY_LINES = String.raw`
def entry_lines(text):
    # (group, line) per entry; comments and blank lines left out.
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            group = line.strip("[] ")
        else:
            yield group, line
`

const PLAN = String.raw`
import csv, email.parser, json, os, platform, re, sys, zipfile
${ENTRY_LINES}
PIP_WHEEL = sys.argv[1]

class Decline(Exception):
    pass

NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")
# pip's own pattern for a wheel's file name (pip/_internal/models/wheel.py).
WHEEL_FILE = re.compile(r"^(?P<name>[^\s-]+?)-(?P<ver>[^\s-]*?)(-(?P<build>\d[^-]*?))?-(?P<pyver>[^\s-]+?)-(?P<abi>[^\s-]+?)-(?P<plat>[^\s-]+?)\.whl$")
ARCHIVES = (".whl", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma", ".zip", ".tar.gz", ".tgz", ".tar")

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def release(text):
    # A plain release as PEP 440 compares it: trailing zeros do not count.
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)

def requested():
    """{name: clauses} of requirements.txt's lines whose marker holds; Decline where pip would read more into a line."""
    try:
        with open("requirements.txt", "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise Decline("requirements.txt is missing or not UTF-8")
    found = {}
    for raw in text.splitlines():
        # pip's comment rule (req_file.py); then no options, continuations, variables or URLs.
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if not line:
            continue
        parsed = None if line.startswith("-") or raw.rstrip().endswith("\\") or "$" in line else requirement(line)
        if parsed is None or parsed[1]:
            raise Decline("requirements.txt has %r, which pip reads more into than a name, versions and a marker" % raw.strip())
        name, _, clauses, marker = parsed
        if marker is not None:
            holds = evaluate(marker)
            if holds is None:
                raise Decline("requirements.txt has %r, whose marker is not certain here" % raw.strip())
            if not holds:
                continue
        if name in found:
            raise Decline("requirements.txt names %s twice" % name)
        found[name] = clauses
    if not found:
        raise Decline("requirements.txt names nothing")
    return found

def supported_tags():
    # pip's own list, from the interpreter's bundled pip (imported from the wheel: a few modules).
    sys.path.insert(0, PIP_WHEEL)
    from pip._internal.utils.compatibility_tags import get_supported
    rank = {}
    for i, t in enumerate(get_supported()):
        rank.setdefault((t.interpreter, t.abi, t.platform), i)
    return rank

def wheel_index():
    """{name: [(file, version, tags, build)]}: every wheel in wheels/, as pip lists them."""
    if not os.path.isdir("wheels"):
        raise Decline("there is no wheels/ directory")
    index = {}
    for entry in sorted(os.listdir("wheels")):
        if not os.path.isfile(os.path.join("wheels", entry)):
            continue
        if not entry.lower().endswith(ARCHIVES):
            continue  # pip looks only at archives
        m = WHEEL_FILE.match(entry)
        if m is None:
            raise Decline("wheels/%s is an archive but not a wheel pip would skip or take for certain" % entry)
        tags = {(x.lower(), y.lower(), z.lower()) for x in m.group("pyver").split(".") for y in m.group("abi").split(".") for z in m.group("plat").split(".")}
        index.setdefault(canonical(m.group("name").replace("_", "-")), []).append(
            (entry, m.group("ver").replace("_", "-"), tags, m.group("build")))
    return index

def choose(name, clauses, index, rank):
    """The one wheel pip can take for 'name': its only version this Python accepts that
    meets requirements.txt's clauses (pip knows those from its start), best tag first.
    Where pip could choose between versions, it is pip's to choose."""
    fits = []
    for entry, version, tags, build in index.get(name, []):
        if build or not RELEASE.match(version):
            raise Decline("wheels/%s has a build tag or a version that is not a plain release" % entry)
        meets = satisfies(version, clauses)
        if meets is None:
            raise Decline("whether %s %s meets %s is not certain here" % (name, version, ",".join(clauses)))
        if meets and any(t in rank for t in tags):
            fits.append((min(rank[t] for t in tags if t in rank), entry, version))
    if not fits:
        raise Decline("wheels/ has no wheel of %s%s that this Python can install" % (name, ",".join(clauses)))
    fits.sort()
    if len({release(v) for _, _, v in fits}) > 1:
        raise Decline("wheels/ has versions %s of %s, which pip would choose between" % (", ".join(sorted({v for _, _, v in fits})), name))
    if len({v for _, _, v in fits}) > 1 or (len(fits) > 1 and fits[0][0] == fits[1][0]):
        raise Decline("wheels/ has several wheels of %s %s that pip would choose between" % (name, fits[0][2]))
    return fits[0][1], fits[0][2]

# ---- PEP 508, decided only where certain ----

ENV = {
    "implementation_name": sys.implementation.name,
    "implementation_version": "{0.major}.{0.minor}.{0.micro}".format(sys.implementation.version) + (
        "" if sys.implementation.version.releaselevel == "final"
        else sys.implementation.version.releaselevel[0] + str(sys.implementation.version.serial)),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
    "extra": "",  # pip asks with no extra when none is requested
}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")

def compare(lhs, op, rhs):
    """True or False, or None where this is not certain to agree with packaging."""
    if op == "in":
        return lhs in rhs
    if op == "not in":
        return lhs not in rhs
    if op == "===":
        return lhs == rhs
    if RELEASE.match(lhs) and RELEASE.match(rhs):
        a, b = release(lhs), release(rhs)
        if op == "~=":
            n = len(rhs.split("."))
            if n < 2:
                return None
            pad = lambda v: v + (0,) * (n - len(v))
            return a >= b and pad(a)[:n - 1] == pad(b)[:n - 1]
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}.get(op)
    # Neither side a version packaging could read: a string comparison there too.
    if op in ("==", "!=") and WORD.match(rhs) and not re.match(r"[vV][0-9]", rhs) and (lhs == "" or WORD.match(lhs)):
        return (lhs == rhs) == (op == "==")
    return None

TOKEN = re.compile(r"""\s*(\(|\)|===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b|and\b|or\b|'[^']*'|"[^"]*"|[A-Za-z_][A-Za-z0-9_.]*)""")

def evaluate(marker):
    tokens, at = [], 0
    marker = marker.strip()
    while at < len(marker):
        m = TOKEN.match(marker, at)
        if m is None:
            return None
        tokens.append(re.sub(r"\s+", " ", m.group(1)))
        at = m.end()
        while at < len(marker) and marker[at].isspace():
            at += 1
    pos = [0]
    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None
    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]
    def value():
        t = take() if peek() is not None else None
        if t is None:
            raise Decline("")
        if t[0] in "'\"":
            return t[1:-1]
        if t in ENV:
            return ENV[t]
        raise Decline("")
    def atom():
        if peek() == "(":
            take()
            result = either()
            if peek() != ")":
                raise Decline("")
            take()
            return result
        lhs = value()
        op = take() if peek() in ("===", "==", "!=", "<=", ">=", "~=", "<", ">", "in", "not in") else None
        if op is None:
            raise Decline("")
        return compare(lhs, op, value())
    def joined(word, part, combine):
        # part (word part)*: None when any part is, so an uncertain clause is never outvoted.
        def parse():
            results = [part()]
            while peek() == word:
                take()
                results.append(part())
            return None if None in results else combine(results)
        return parse
    both = joined("and", atom, all)
    either = joined("or", both, any)
    try:
        result = either()
    except (Decline, IndexError):
        return None
    return result if pos[0] == len(tokens) else None

CLAUSE = re.compile(r"(===|==|!=|<=|>=|~=|<|>)\s*(\S+)\Z")

def satisfies(version, clauses):
    """Whether the plain release 'version' meets every clause; None where not certain."""
    results = []
    for clause in clauses:
        m = CLAUSE.match(clause)
        if m is None:
            return None
        op, wanted = m.groups()
        if op in ("==", "!=") and wanted.endswith(".*") and RELEASE.match(wanted[:-2]):
            prefix = [int(p) for p in wanted[:-2].split(".")]
            have = [int(p) for p in version.split(".")]
            have += [0] * (len(prefix) - len(have))
            results.append((have[:len(prefix)] == prefix) == (op == "=="))
        elif op == "===":
            results.append(version == wanted)
        elif RELEASE.match(wanted):
            results.append(compare(version, op, wanted))
        else:
            return None
    return None if None in results else all(results)

def requirement(text):
    """(name, has extras, clauses, marker or None), or None where not read for certain."""
    head, sep, marker = text.partition(";")
    m = re.match(r"\s*(" + NAME + r")\s*(\[[^\]]*\])?\s*(.*?)\s*\Z", head)
    if m is None or "@" in head:
        return None
    name, extras, spec = m.groups()
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1].strip()
    clauses = [c.strip() for c in spec.split(",")] if spec else []
    if not all(CLAUSE.match(c) for c in clauses):
        return None
    return canonical(name), bool(extras and extras.strip("[] ")), clauses, marker if sep else None

# ---- the chosen wheels, as pip would read them ----

def headers(data):
    return email.parser.Parser().parsestr(data.decode("utf-8"))

ENTRY = re.compile(r"[^\[\s=]+\s*=\s*\w+(\.\w+)*:\w+(\.\w+)*(\s*\[[\w\s,-]*\])?\Z")
LOOSE_ENTRY = re.compile(r"\s*.+?\s*=\s*[\w.]+\s*(:\s*[\w.]+)?\s*(\[.*\])?\s*$")

def entry_points(text):
    """console_scripts and gui_scripts names; Decline where pip's readers could differ."""
    names = set()
    for group, line in entry_lines(text):
        if group is None or not LOOSE_ENTRY.match(line):
            raise Decline("entry_points.txt line %r" % line)
        if group in ("console_scripts", "gui_scripts"):
            name = line.split("=", 1)[0].strip()
            if not ENTRY.match(line) or name in names or "/" in name:
                raise Decline("entry point %r" % line)
            if re.match(r"(pip|easy_install)(\d(\.\d+)?)?(-\d(\.\d+)?)?\Z", name):
                raise Decline("entry point %s, which pip names its own way" % name)
            names.add(name)
    return names

def inspect(path, name, chosen):
    """Where the wheel's files land, and what it requires; Decline where pip's reading could differ."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        members = [i.filename for i in infos]
        if len(set(members)) != len(members):
            raise Decline("%s lists a file twice" % path)
        info_dirs = {m.split("/", 1)[0] for m in members if m.split("/", 1)[0].endswith(".dist-info")}
        if len(info_dirs) != 1 or not canonical(next(iter(info_dirs))).startswith(name):
            raise Decline("%s has not exactly one .dist-info of its own" % path)
        info = info_dirs.pop()
        for i in infos:
            parts = i.filename.split("/")
            mode = i.external_attr >> 16
            if i.filename.startswith("/") or "\\" in i.filename or ".." in parts or (mode & 0o170000) == 0o120000:
                raise Decline("%s has an entry %r pip could treat otherwise" % (path, i.filename))
            if parts[0].endswith(".data") and not i.filename.endswith("/"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib", "scripts"):
                    raise Decline("%s installs %s, outside site-packages and bin" % (path, i.filename))
            if parts[0] == info and len(parts) == 2 and parts[1] in ("INSTALLER", "REQUESTED", "direct_url.json"):
                raise Decline("%s ships %s, which pip writes itself" % (path, i.filename))
        wheel = headers(z.read(info + "/WHEEL"))
        if (wheel.get("Wheel-Version") or "").strip().split(".")[0] != "1":
            raise Decline("%s is not a version 1 wheel" % path)
        rows = z.read(info + "/RECORD").decode("utf-8").splitlines()
        if any(len(r) == 0 or len(r) > 3 for r in csv.reader(rows)):
            raise Decline("%s has a RECORD row pip would stumble on" % path)
        meta = headers(z.read(info + "/METADATA"))
        scripts = entry_points(z.read(info + "/entry_points.txt").decode("utf-8")) if info + "/entry_points.txt" in members else set()
        for m in members:
            parts = m.split("/")
            if len(parts) == 3 and parts[0].endswith(".data") and parts[1] == "scripts":
                base = parts[2]
                for suffix in (".exe", "-script.py", ".pya"):
                    if base.lower().endswith(suffix):
                        base = base[:-len(suffix)]
                if base in scripts:
                    raise Decline("%s ships a wrapper for its entry point %s" % (path, base))
        # Where each file lands (purelib and platlib taken as one folder, as in most venvs).
        places = {("bin", n) for n in scripts}
        for m in members:
            parts = m.split("/")
            if m.endswith("/") or m == info + "/RECORD":
                continue
            if parts[0].endswith(".data"):
                place = ("bin" if parts[1] == "scripts" else "lib", os.path.normpath("/".join(parts[2:])))
            else:
                place = ("lib", os.path.normpath(m))
            if place in places:
                raise Decline("%s installs %s twice" % (path, place[1]))
            places.add(place)
    version = (meta.get("Version") or "").strip()
    if canonical(meta.get("Name") or "") != name or not RELEASE.match(version) or release(version) != release(chosen):
        raise Decline("%s says it is %s %s" % (path, meta.get("Name"), meta.get("Version")))
    python = meta.get("Requires-Python")
    if python is not None and satisfies(ENV["python_full_version"], [c.strip() for c in python.split(",") if c.strip()]) is not True:
        raise Decline("%s requires Python %s" % (path, python))
    return places, meta.get_all("Requires-Dist") or []

def resolve(users, index, rank):
    """{name: (wheel, version)}: what pip installs, every name it reaches having one wheel it can take."""
    chosen, needs, places = {}, [], {}
    queue = [(name, clauses, "requirements.txt") for name, clauses in sorted(users.items())]
    while queue:
        name, clauses, who = queue.pop(0)
        needs.append((name, clauses, who))
        if name in chosen:
            continue
        entry, version = choose(name, users.get(name, []), index, rank)
        chosen[name] = (entry, version)
        found, requires = inspect(os.path.join("wheels", entry), name, version)
        for place in found:
            # Two wheels writing one file: pip's result would depend on its order of installing.
            if place in places:
                raise Decline("%s and %s both install %s" % (places[place], entry, place[1]))
            places[place] = entry
        for text in requires:
            parsed = requirement(text)
            if parsed is None:
                raise Decline("%s requires %r" % (entry, text))
            dep, extras, dep_clauses, marker = parsed
            holds = True if marker is None else evaluate(marker)
            if holds is False:
                continue
            if holds is None or extras:
                raise Decline("%s requires %s, which is not certain here" % (entry, text.strip()))
            queue.append((dep, dep_clauses, entry))
    for name, clauses, who in needs:
        if satisfies(chosen[name][1], clauses) is not True:
            raise Decline("%s needs %s%s; the wheel pip can take is %s" % (who, name, ",".join(clauses), chosen[name][0]))
    return chosen

def main():
    try:
        users = requested()
        chosen = resolve(users, wheel_index(), supported_tags())
    except Decline as e:
        print(json.dumps({"install": False, "why": str(e)}))
        return
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        print(json.dumps({"install": False, "why": "%s: %s" % (type(e).__name__, e)}))
        return
    wheels = [{"path": os.path.join("wheels", chosen[n][0]), "requested": n in users} for n in sorted(chosen)]
    print(json.dumps({"install": True, "wheels": wheels}))

main()
`

/*
 * Each share (a process) writes its share of the files of every wheel, as pip writes
 * them; the share a wheel's index falls to also writes its scripts, its entry points' scripts,
 * INSTALLER, REQUESTED and RECORD from this process (they depend on no other share's
 * files: RECORD keeps the wheel's own hashes for what is copied as it is).
 */
const INSTALL = String.raw`
import base64, csv, email.parser, hashlib, json, os, re, shutil, stat, sys, sysconfig, zipfile
${ENTRY_LINES}
SHARES, WHEELS = int(sys.argv[1]), json.loads(sys.argv[2])
PATHS = sysconfig.get_paths()
UMASK = os.umask(0)
os.umask(UMASK)

# distlib's SCRIPT_TEMPLATE, as pip 22-24 vendor it.
TEMPLATE = r'''# -*- coding: utf-8 -*-
import re
import sys
from %(module)s import %(import_name)s
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\.pyw|\.exe)?$', '', sys.argv[0])
    sys.exit(%(func)s())
'''

def shebang():
    # distlib's ScriptMaker._get_shebang and _build_shebang on POSIX, then _write_script's newline.
    executable = sys.executable
    if " " in executable and not executable.startswith('"'):
        executable = '"%s"' % executable
    exe = executable.encode("utf-8")
    if b" " not in exe and len(exe) + 3 <= (512 if sys.platform == "darwin" else 127):
        return b"#!" + exe + b"\n"
    return b"#!/bin/sh\n'''exec' " + exe + b' "$0" "$@"\n' + b"' '''" + os.linesep.encode("utf-8")

def destination(member, lib):
    first = member.split("/", 1)[0]
    if first.endswith(".data"):
        _, key, rest = os.path.normpath(member).split(os.path.sep, 2)
        return os.path.join(PATHS[key], rest), key == "scripts"
    return os.path.join(lib, os.path.normpath(member)), False

def record_path(path, lib):
    return os.path.relpath(path, lib).replace(os.path.sep, "/")

def rehash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        data = f.read()
    h.update(data)
    return "sha256=" + base64.urlsafe_b64encode(h.digest()).decode("latin1").rstrip("="), str(len(data))

def write(z, info, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.exists(dest):
        os.unlink(dest)
    with z.open(info) as source, open(dest, "wb") as out:
        shutil.copyfileobj(source, out)
    mode = info.external_attr >> 16
    if mode and stat.S_ISREG(mode) and mode & 0o111:
        os.chmod(dest, 0o777 & ~UMASK | 0o111)

def generate(path, data):
    if os.path.exists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)

def fix_script(path):
    # pip's fix_script.
    with open(path, "rb") as script:
        first = script.readline()
        if not first.startswith(b"#!python"):
            return False
        rest = script.read()
    with open(path, "wb") as script:
        script.write(b"#!" + sys.executable.encode(sys.getfilesystemencoding()) + os.linesep.encode("ascii"))
        script.write(rest)
    return True

def entry_points(text):
    points = []
    for group, line in entry_lines(text):
        if group in ("console_scripts", "gui_scripts"):
            name, value = (s.strip() for s in line.split("=", 1))
            points.append((name, re.split(r"\s*\[", value, 1)[0].strip()))
    return points

def install(share, index, wheel, requested):
    with zipfile.ZipFile(wheel) as z:
        infos = [i for i in z.infolist() if not i.filename.endswith("/")]
        info_dir = next(i.filename.split("/", 1)[0] for i in infos if i.filename.split("/", 1)[0].endswith(".dist-info"))
        meta = email.parser.Parser().parsestr(z.read(info_dir + "/WHEEL").decode("utf-8"))
        lib = PATHS["purelib"] if meta.get("Root-Is-Purelib", "").lower() == "true" else PATHS["platlib"]
        record = info_dir + "/RECORD"
        owner = index % SHARES == share
        plain = [i for i in infos if i.filename != record and not destination(i.filename, lib)[1]]
        for info in sorted(plain, key=lambda i: (-i.file_size, i.filename))[share::SHARES]:
            write(z, info, destination(info.filename, lib)[0])
        if not owner:
            return
        installed, changed, generated = {}, set(), []
        for info in infos:
            dest, script = destination(info.filename, lib)
            installed[info.filename] = record_path(dest, lib)
            if script:
                write(z, info, dest)
                if fix_script(dest):
                    changed.add(installed[info.filename])
        if info_dir + "/entry_points.txt" in z.namelist():
            head = shebang()
            for name, value in entry_points(z.read(info_dir + "/entry_points.txt").decode("utf-8")):
                module, func = value.split(":")
                path = os.path.join(PATHS["scripts"], name)
                generate(path, head + (TEMPLATE % {"module": module, "import_name": func.split(".")[0], "func": func}).encode("utf-8"))
                os.chmod(path, (os.stat(path).st_mode | 0o555) & 0o7777)
                generated.append(path)
        dist_info = os.path.join(lib, info_dir)
        os.makedirs(dist_info, exist_ok=True)
        generate(os.path.join(dist_info, "INSTALLER"), b"pip\n")
        generated.append(os.path.join(dist_info, "INSTALLER"))
        if requested:
            # Named in requirements.txt (pip's user_supplied), not only needed by another wheel.
            generate(os.path.join(dist_info, "REQUESTED"), b"")
            generated.append(os.path.join(dist_info, "REQUESTED"))
        # pip's get_csv_rows_for_installed and _normalized_outrows.
        rows = []
        for row in csv.reader(z.read(record).decode("utf-8").splitlines()):
            path = installed.pop(row[0], row[0])
            if path in changed:
                digest, size = rehash(os.path.join(lib, path))
            else:
                digest, size = (row[1] if len(row) > 1 else ""), (row[2] if len(row) > 2 else "")
            rows.append((path, digest, size))
        for path in generated:
            rows.append((record_path(path, lib),) + rehash(path))
        rows += [(path, "", "") for path in installed.values()]
        target = os.path.join(dist_info, "RECORD")
        if os.path.exists(target):
            os.unlink(target)
        with open(target, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(sorted((p, d, str(s)) for p, d, s in rows))

def run(share):
    for index, wheel in enumerate(WHEELS):
        install(share, index, wheel["path"], wheel["requested"])

# Forked, so every share is in the one process group the lock names and a timeout ends.
children = []
for share in range(1, SHARES):
    pid = os.fork()
    if pid == 0:
        try:
            run(share)
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    children.append(pid)
try:
    run(0)
except BaseException:
    # No share goes on writing once the install has failed.
    for pid in children:
        os.kill(pid, 9)
    raise
finally:
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
if failed:
    sys.exit("a share of the install failed (above)")
`

const PLAN_TIMEOUT_MS = 60_000

/** A wheel to install (its path relative to the release), and whether requirements.txt names it. */
export interface PlannedWheel {
  readonly path: string
  readonly requested: boolean
}

export type InstallPlan =
  /** These wheels, installed as pip would install them. */
  | { readonly _tag: "Direct"; readonly wheels: ReadonlyArray<PlannedWheel> }
  /** pip must install: why not directly, for the log. */
  | { readonly _tag: "Pip"; readonly why: string }

interface RunIn {
  /** The release directory. */
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly user?: { readonly uid: number; readonly gid: number } | undefined
  readonly timeoutMs?: number
  readonly onSpawn?: (pid: number) => void
}

/** The plan's last line, as the script prints it. */
const readPlan = (tail: string): { install: boolean; why?: string; wheels?: Array<PlannedWheel> } | undefined => {
  const line = tail.split("\n").reverse().find((l) => l.startsWith("{\"install\""))
  try {
    return line === undefined ? undefined : JSON.parse(line)
  } catch {
    return undefined
  }
}

/**
 * Whether the release's wheels can be installed directly, with the release's
 * interpreter (not yet its venv: it runs while the venv is made). Never fails: a plan
 * that cannot be made is pip's to install.
 */
export const planInstall = (interpreter: Interpreter, options: RunIn): Effect.Effect<InstallPlan> => {
  const pip = interpreter.bundledPip
  if (pip === undefined || !followsPip(pip)) {
    return Effect.succeed({ _tag: "Pip", why: `the interpreter's pip (${pip ?? "none"}) is not one Sacar follows` })
  }
  return runProcess({
    command: interpreter.path,
    args: ["-I", "-c", PLAN, pip],
    ...options,
    onSpawn: undefined,
    // The plan is one line naming every wheel; a plan that hangs is pip's to install.
    tailBytes: 1 << 20,
    timeoutMs: Math.min(options.timeoutMs ?? PLAN_TIMEOUT_MS, PLAN_TIMEOUT_MS)
  }).pipe(
    Effect.map(({ tail }): InstallPlan => {
      const plan = readPlan(tail)
      return plan?.install === true && plan.wheels !== undefined
        ? { _tag: "Direct", wheels: plan.wheels }
        : { _tag: "Pip", why: plan?.why ?? `the plan printed nothing: ${tail.slice(-500)}` }
    }),
    Effect.catch((error) => Effect.succeed<InstallPlan>({ _tag: "Pip", why: `the plan failed: ${error.message}` }))
  )
}

/**
 * Install the planned wheels into the venv of `venvPython`, one process per core (forked
 * by the first, so the lock's one process group holds them all). Byte-compilation is
 * compileInstalled's, afterwards, as after pip.
 */
export const installWheels = (
  venvPython: string,
  wheels: ReadonlyArray<PlannedWheel>,
  options: RunIn
): Effect.Effect<void, ProcessFailed | ProcessTimedOut> => {
  const shares = Math.max(1, Math.min(availableParallelism(), wheels.length))
  return runProcess({
    command: venvPython,
    args: ["-I", "-c", INSTALL, String(shares), JSON.stringify(wheels)],
    ...options
  }).pipe(
    Effect.asVoid
  )
}
