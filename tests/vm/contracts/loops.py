"""Arithmetic and loops that run near the gas limit."""

# ruff: noqa: F821, SIM108  (ledger, require and sha256 come from the VM, or from the oracle under CPython)


def sum_squares(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def collatz(n):
    require(n > 0, "n must be positive")
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def depth(n):
    if n <= 0:
        return 0
    return 1 + depth(n - 1)


def grow(n):
    s = "x"
    while len(s) < n:
        s = s + s
    return len(s)


def table(n, m):
    acc = []
    for i in range(n):
        row = []
        for j in range(m):
            row.append(i * j - m)
        acc.append(sum(row))
    return acc


def power(b, e):
    return b**e


def arith(a, b):
    return (a // b, a % b, -a // b, a << 3, a >> 2, a & b, a | b, a ^ b, ~a, abs(a - b))


def primes(limit):
    found = []
    candidate = 2
    while len(found) < limit:
        is_prime = True
        for p in found:
            if p * p > candidate:
                break
            if candidate % p == 0:
                is_prime = False
                break
        if is_prime:
            found.append(candidate)
        candidate += 1
    return found[-3:]


def store_many(n):
    for i in range(n):
        ledger.put(f"k{i}", i * i)
    return n
