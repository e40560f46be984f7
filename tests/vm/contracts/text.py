"""String, bytes and dict manipulation without storage."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)


def word_counts(text):
    counts = {}
    for w in text.split():
        counts[w] = counts.get(w, 0) + 1
    return counts


def top_words(text, k):
    pairs = []
    for w, c in word_counts(text).items():
        pairs.append((-c, w))
    pairs = sorted(pairs)
    out = []
    for p in pairs[:k]:
        out.append(p[1])
    return out


def normalise(text):
    return "-".join(text.lower().split())


def merge(a, b):
    out = dict(a)
    for k in b:
        if k in out:
            out[k] = out[k] + b[k]
        else:
            out[k] = b[k]
    return out


def invert(d):
    out = {}
    for k, v in d.items():
        out[v] = k
    return out


def fingerprint(data):
    h = sha256(data)
    return h.hex()[:16], len(data), data[::-1]


def describe(x):
    s = str(x)
    return f"<{s}>" + str(len(s))


def cut(s, i, j, step):
    return s[i:j:step]


def replace_all(s, old, new):
    return s.replace(old, new)


def parse_int(s):
    return int(s) * 2 + 1


def pick(items, i):
    items[i] = items[-1]
    del items[0]
    return items, max(items), min(items)


def swap_pairs(xs):
    i = 0
    while i + 1 < len(xs):
        xs[i], xs[i + 1] = xs[i + 1], xs[i]
        i += 2
    return xs


def flags(n):
    out = []
    for i in range(n):
        out.append(i % 3 == 0 or (i % 5 == 0 and not i % 2))
    return out


def encode_roundtrip(s):
    b = s.encode()
    return b.decode() == s, len(b), b.hex().upper()


def repeat(s, n):
    return s * n


def tally_pairs(pairs):
    totals = {}
    order = []
    for key, amount in pairs:
        if key not in totals:
            totals[key] = 0
            order.append(key)
        totals[key] += amount
    scaled = [0] * len(order)
    for i in range(len(order)):
        scaled[i] += totals[order[i]]
        scaled[i] *= 2
    order += ["end"]
    return totals, scaled, order


def alias(xs, ys):
    zs = xs
    zs += ys
    ws = xs
    ws *= 2
    return xs, zs, ws
